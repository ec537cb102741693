// <acid-counter> (web/embed.js) on a page of ANOTHER origin, in a real browser against the real
// local runtime.
//
//   node --test tests/web/embed.e2e.mjs
//
// A tiny node server on its own port serves a page that loads the module from the service and
// embeds the element. Without ALLOWED_ORIGINS the element is read-only: its socket is refused,
// it follows the counter with Server-Sent Events (value shown, updates live) and its buttons say
// that changes are not allowed, and change nothing. With the page's origin in ALLOWED_ORIGINS
// it follows the socket and its buttons change the counter, each click exactly once. The
// service's own embed page runs under its CSP without an error.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { startServer, launchBrowser, apiClient } from './harness.mjs';

let browser;
let other;
let otherOrigin;
let page = '';

before(async () => {
  // The embedding site: one page, whatever it is asked for.
  other = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
    res.end(page);
  });
  await new Promise((resolve) => other.listen(0, '127.0.0.1', resolve));
  otherOrigin = `http://127.0.0.1:${other.address().port}`;
  browser = await launchBrowser();
}, { timeout: 60_000 });

after(async () => {
  await browser?.close();
  await new Promise((resolve) => other?.close(resolve));
});

const toNumber = (text) => Number(text.replaceAll(',', '').replace('\u2212', '-'));

/** The embedding page for the service at `base`. */
function embedding(base) {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>A blog</title>
<script type="module" src="${base}/embed.js"></script></head>
<body><h1>A page elsewhere</h1><acid-counter src="${base}" buttons>Visitors</acid-counter></body></html>`;
}

/** Opens the embedding page and waits until the element shows a value. */
async function open(context, base) {
  page = embedding(base);
  const p = await context.newPage();
  p.setDefaultTimeout(15_000);
  const streams = { ws: 0, events: 0 };
  p.on('websocket', () => (streams.ws += 1));
  p.on('request', (r) => new URL(r.url()).pathname === '/api/events' && (streams.events += 1));
  await p.goto(otherOrigin);
  await p.locator('acid-counter output[aria-busy="false"]').waitFor();
  return { p, streams };
}

const shown = async (p) => toNumber(await p.locator('acid-counter output').textContent());

function waitForShown(p, n) {
  return p.waitForFunction(
    (n) => {
      const out = document.querySelector('acid-counter').shadowRoot.querySelector('output');
      return Number(out.textContent.replaceAll(',', '').replace('\u2212', '-')) === n;
    },
    n,
    { timeout: 15_000 },
  );
}

/** The audit trail once it holds `n` entries (or whatever it holds after 15 s). */
async function auditOf(api, n) {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const { entries } = await api.audit(0);
    if (entries.length >= n || Date.now() > deadline) return entries;
    await new Promise((r) => setTimeout(r, 100));
  }
}

test('read-only on a page the service does not admit: live over Server-Sent Events, buttons refused', { timeout: 240_000 }, async () => {
  const server = await startServer();
  try {
    const api = apiClient(server.base);
    await api.increment(41);
    const context = await browser.newContext();
    const { p, streams } = await open(context, server.base);
    assert.equal(await shown(p), 41);
    // Accessible: a polite live region in an open shadow root, named buttons.
    const out = p.locator('acid-counter output');
    assert.equal(await out.getAttribute('aria-live'), 'polite');
    assert.equal(await p.locator('acid-counter button[aria-label="Increment"]').count(), 1);
    // The socket was refused (403: origin not allowed); the stream took over.
    assert.ok(streams.events >= 1, 'no event stream');
    // Live: a change made elsewhere shows up.
    await api.increment(9);
    await waitForShown(p, 50);
    await api.decrement(60);
    await waitForShown(p, -10);
    assert.match(await out.textContent(), /^\u221210$/);
    // A click is refused and says so; nothing changes.
    const before = (await api.audit(0)).entries.length;
    await p.locator('acid-counter button[aria-label="Increment"]').click();
    await p.locator('acid-counter [role="status"]', { hasText: 'not allowed' }).waitFor();
    assert.match(await p.locator('acid-counter [role="status"]').textContent(), new RegExp(`not allowed from ${otherOrigin}`));
    await new Promise((r) => setTimeout(r, 500));
    assert.equal((await api.audit(0)).entries.length, before);
    assert.equal((await api.value()).value, -10);
    await context.close();
  } finally {
    await server.stop();
  }
});

test('with the page admitted by ALLOWED_ORIGINS: live over the socket, each click one change', { timeout: 240_000 }, async () => {
  const server = await startServer({ vars: { ALLOWED_ORIGINS: otherOrigin } });
  try {
    const api = apiClient(server.base);
    const context = await browser.newContext();
    const { p, streams } = await open(context, server.base);
    assert.equal(await shown(p), 0);
    assert.ok(streams.ws >= 1, 'no socket');
    assert.equal(streams.events, 0, 'the socket was enough');
    const inc = p.locator('acid-counter button[aria-label="Increment"]');
    const dec = p.locator('acid-counter button[aria-label="Decrement"]');
    await inc.click();
    await waitForShown(p, 1);
    await inc.click();
    await inc.click();
    await dec.click();
    // The shown value passes through 2 on the way (1, 2, 3, 2), so wait for the four changes
    // in the audit trail first, then for the value they leave.
    const entries = await auditOf(api, 4);
    await waitForShown(p, 2);
    // Exactly one change per click, each with its own key.
    assert.deepEqual(entries.map((e) => e.operation), ['increment', 'increment', 'increment', 'decrement']);
    assert.equal(new Set(entries.map((e) => e.request_id)).size, 4);
    assert.equal(await p.locator('acid-counter [role="status"]').textContent(), '');
    // And changes from elsewhere still show.
    await api.increment(5);
    await waitForShown(p, 7);
    await context.close();
  } finally {
    await server.stop();
  }
});

test("the service's embed page runs under its CSP without an error", { timeout: 240_000 }, async () => {
  const server = await startServer();
  try {
    const context = await browser.newContext();
    const p = await context.newPage();
    const problems = [];
    p.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
    p.on('console', (m) => ['error', 'warning'].includes(m.type()) && problems.push(`${m.type()}: ${m.text()}`));
    const res = await p.goto(`${server.base}/embed.html`);
    assert.equal(res.status(), 200);
    await p.locator('acid-counter output[aria-busy="false"]').waitFor({ timeout: 15_000 });
    assert.equal(await shown(p), 0);
    // Same origin: the buttons work.
    await p.locator('acid-counter button[aria-label="Increment"]').click();
    await waitForShown(p, 1);
    // Styled from its shadow root (the constructed sheet is not blocked by the CSP).
    const radius = await p.locator('acid-counter').evaluate((e) => getComputedStyle(e).borderTopLeftRadius);
    assert.equal(radius, '12px');
    assert.match(await p.locator('pre code').textContent(), /<acid-counter>/);
    const js = await fetch(`${server.base}/embed.js`, { headers: { origin: 'https://elsewhere.example' } });
    assert.equal(js.headers.get('access-control-allow-origin'), '*');
    assert.match(js.headers.get('content-type'), /javascript/);
    assert.deepEqual(problems, []);
    await context.close();
  } finally {
    await server.stop();
  }
});
