// The web app in a real browser against the real local runtime.
//
//   node --test tests/web/browser.e2e.mjs
//
// Starts its own `wrangler dev` (fresh state, free port) and a headless Debian Chromium, and
// drives the page the way people do: clicks, keys, several tabs, a network that drops. Every
// check reads the page or the server's audit trail; nothing inside the app is reached into.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startServer, launchBrowser, apiClient, ROOT } from './harness.mjs';

const MAX = 9_007_199_254_740_991;
const AXE = join(ROOT, 'node_modules/axe-core/axe.min.js');

let server;
let browser;
let api;

before(async () => {
  server = await startServer();
  api = apiClient(server.base);
  browser = await launchBrowser();
}, { timeout: 150_000 });

after(async () => {
  await browser?.close();
  await server?.stop();
});

const toNumber = (text) => Number(text.replaceAll(',', '').replace('\u2212', '-'));

/** Opens the app in a new page of `context` and waits until it is live and shows a value. */
async function openApp(context) {
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  await page.goto(server.base);
  await page.locator('#link[data-state="live"]').waitFor();
  await page.locator('#value[aria-busy="false"]').waitFor();
  return page;
}

async function shown(page) {
  return toNumber(await page.locator('#value').textContent());
}

function waitForValue(page, n, timeout = 15_000) {
  return page.waitForFunction(
    (n) => Number(document.getElementById('value').textContent.replaceAll(',', '').replace('\u2212', '-')) === n,
    n,
    { timeout },
  );
}

/** Polls `check` until it holds. */
async function until(check, timeout) {
  const deadline = Date.now() + timeout;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeout} ms: ${check}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Counts the page's requests to a path, to prove something was (not) sent. */
function countRequests(page, path) {
  const counter = { n: 0 };
  page.on('request', (r) => {
    if (new URL(r.url()).pathname === path) counter.n += 1;
  });
  return counter;
}

test('serves the page with its security headers and runs under the CSP without a single error', { timeout: 60_000 }, async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  page.on('console', (m) => ['error', 'warning'].includes(m.type()) && problems.push(`${m.type()}: ${m.text()}`));
  await page.addInitScript(() =>
    document.addEventListener('securitypolicyviolation', (e) => console.error(`CSP blocked ${e.blockedURI} (${e.violatedDirective})`)),
  );
  const response = await page.goto(server.base);
  const h = response.headers();
  assert.match(h['content-security-policy'], /default-src 'none'; script-src 'self'; style-src 'self'/);
  assert.match(h['content-security-policy'], /connect-src 'self'/);
  assert.match(h['content-security-policy'], /frame-ancestors 'none'/);
  assert.equal(h['x-content-type-options'], 'nosniff');
  assert.equal(h['referrer-policy'], 'no-referrer');
  assert.match(h['permissions-policy'], /camera=\(\)/);
  assert.equal(h['cache-control'], 'no-cache');
  for (const path of ['/js/app.mjs', '/js/sender.mjs', '/styles.css']) {
    const res = await fetch(`${server.base}${path}`);
    assert.equal(res.headers.get('cache-control'), 'public, max-age=0, must-revalidate', path);
    assert.match(res.headers.get('content-security-policy'), /default-src 'none'/, path);
    assert.equal(res.headers.get('x-content-type-options'), 'nosniff', path);
  }
  // An app route is the page too (single-page fallback), with the same headers.
  const deep = await fetch(`${server.base}/some/route`, { headers: { 'Sec-Fetch-Mode': 'navigate' } });
  assert.equal(deep.headers.get('cache-control'), 'no-cache');
  assert.match(await deep.text(), /<output class="value"/);

  await page.locator('#link[data-state="live"]').waitFor();
  const { value } = await api.value();
  await waitForValue(page, value);
  await page.click('#inc');
  await waitForValue(page, value + 1);
  assert.match(await page.title(), new RegExp(`^${(value + 1).toLocaleString('en-US')} · Number Acidizer$`));
  // The ledger line: the first checkpoint this browser sees, then a later one proven (by the
  // log's consistency proof) to extend it, then a saved root the log contradicts.
  await page.locator('#ledger[data-tone="ok"]').waitFor();
  assert.match(await page.textContent('#ledger'), /^History verified through version \d+\.$/);
  const saved = await page.evaluate(() => JSON.parse(localStorage.getItem('acidizer.checkpoint')));
  await api.increment(2);
  await page.reload();
  await page.waitForFunction((n) => {
    const m = /verified through version (\d+)/.exec(document.getElementById('ledger').textContent);
    return m && Number(m[1]) > n;
  }, saved.size);
  const later = await page.evaluate(() => JSON.parse(localStorage.getItem('acidizer.checkpoint')));
  assert.ok(later.size > saved.size && later.size > 0);
  await page.evaluate((size) => localStorage.setItem('acidizer.checkpoint', JSON.stringify({ size, root: btoa('x'.repeat(32)) })), later.size);
  await page.reload();
  await page.locator('#ledger[data-tone="error"]').waitFor();
  assert.match(await page.textContent('#ledger'), /history was rewritten/);
  assert.deepEqual(problems, []);
  await context.close();
});

test('two tabs stay in sync, and a change made through the API appears in both', { timeout: 60_000 }, async () => {
  const context = await browser.newContext();
  const a = await openApp(context);
  const b = await openApp(context);
  const start = (await api.value()).value;
  await waitForValue(b, start);

  await a.fill('#amount', '3');
  await a.click('#inc');
  await Promise.all([waitForValue(a, start + 3), waitForValue(b, start + 3)]);

  await b.fill('#amount', '10');
  await b.click('#dec');
  await Promise.all([waitForValue(a, start - 7), waitForValue(b, start - 7)]);

  await api.increment(11);
  await Promise.all([waitForValue(a, start + 4), waitForValue(b, start + 4)]);
  for (const page of [a, b]) {
    await page.locator('#changes li').first().filter({ hasText: 'Increment by 11' }).waitFor();
    assert.match(await page.locator('#changes li').nth(1).textContent(), /Decrement by 10/);
    assert.match(await page.locator('#changes li').nth(2).textContent(), /Increment by 3/);
  }
  await context.close();
});

test('recent activity lists the last 20 changes and the chart follows live', { timeout: 60_000 }, async () => {
  // More changes than the page remembers (40), so both limits show.
  for (let i = 1; i <= 45; i++) await api.increment(i);
  const context = await browser.newContext();
  const page = await openApp(context);
  await page.locator('#changes li').nth(19).waitFor();
  assert.equal(await page.locator('#changes li').count(), 20);
  assert.match(await page.locator('#changes li').first().textContent(), /Increment by 45/);
  // 40 remembered changes: 41 points including where the first one started.
  const points = () => page.locator('#chart-line').getAttribute('d').then((d) => d.match(/[ML]/g).length);
  assert.equal(await points(), 41);
  assert.equal(await page.locator('#changes-empty').isHidden(), true);

  const before = await page.locator('#chart-line').getAttribute('d');
  const { value } = await api.decrement(1000);
  await waitForValue(page, value);
  await page.locator('#changes li').first().filter({ hasText: 'Decrement by 1,000' }).waitFor();
  assert.equal(await page.locator('#changes li').count(), 20, 'still the last 20');
  assert.notEqual(await page.locator('#chart-line').getAttribute('d'), before);
  assert.match(await page.locator('#legend').textContent(), /^Low .* · High .*$/);
  await context.close();
});

test('offline is shown as offline, and changes made meanwhile arrive on reconnect', { timeout: 60_000 }, async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  const sockets = [];
  page.on('websocket', (ws) => sockets.push(ws));
  await page.goto(server.base);
  await page.locator('#link[data-state="live"]').waitFor();
  const start = await api.value();
  await waitForValue(page, start.value);
  assert.equal(sockets.length, 1);

  await context.setOffline(true);
  await page.locator('#link[data-state="offline"]').waitFor();
  assert.equal(await page.locator('#link-text').textContent(), 'Offline');
  // The page gives up its socket rather than trust it across the outage.
  if (!sockets[0].isClosed()) await sockets[0].waitForEvent('close');

  await api.increment(7);
  await api.decrement(2);
  await page.waitForTimeout(1000);
  assert.equal(await shown(page), start.value, 'nothing arrives while offline');

  await context.setOffline(false);
  await page.locator('#link[data-state="live"]').waitFor();
  await waitForValue(page, start.value + 5);
  // Resumed from the last version it had, so both missed changes were replayed in order.
  const urls = sockets.map((ws) => ws.url());
  assert.equal(urls.at(-1), `${server.base.replace('http', 'ws')}/api/ws?since=${start.version}`, urls.join());
  await page.locator('#changes li').first().filter({ hasText: 'Decrement by 2' }).waitFor();
  assert.match(await page.locator('#changes li').nth(1).textContent(), /Increment by 7/);
  await context.close();
});

test('a dropped socket shows reconnecting with a countdown, then replays what was missed', { timeout: 90_000 }, async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.setDefaultTimeout(30_000);
  // Backoff is full jitter: a first delay drawn near 0 ms would move on to the next attempt
  // before the countdown could be read. Half of each ceiling makes the waits 0.5, 1, 2, 4 s.
  await page.addInitScript(() => {
    Math.random = () => 0.5;
  });
  let down = false;
  const urls = [];
  const routes = [];
  await page.routeWebSocket(/\/api\/ws/, (ws) => {
    urls.push(ws.url());
    if (down) {
      ws.close({ code: 1011, reason: 'down' });
      return;
    }
    ws.connectToServer();
    routes.push(ws);
  });
  await page.goto(server.base);
  await page.locator('#link[data-state="live"]').waitFor();
  await page.locator('#value[aria-busy="false"]').waitFor();
  const start = await api.value();
  await waitForValue(page, start.value);

  down = true;
  await routes.at(-1).close({ code: 1011, reason: 'gone' });
  await page.locator('#link[data-state="reconnecting"]').waitFor();
  assert.match(await page.locator('#link').textContent(), /Reconnecting in \d+s/);
  await api.increment(4);
  // It keeps trying while the server is away, waiting longer each time.
  await until(() => urls.length >= 2, 10_000);
  const tries = urls.length;
  await page.waitForTimeout(2500);
  assert.ok(urls.length > tries, 'kept retrying');
  assert.equal(await shown(page), start.value);

  down = false;
  await page.locator('#link[data-state="live"]').waitFor();
  await waitForValue(page, start.value + 4);
  assert.ok(urls.slice(1).every((u) => u.endsWith(`/api/ws?since=${start.version}`)), urls.join());
  await context.close();
});

test('a click during an outage is applied exactly once after recovery', { timeout: 60_000 }, async () => {
  const context = await browser.newContext();
  const page = await openApp(context);
  const start = await api.value();
  await waitForValue(page, start.value);
  const keys = [];
  let replayed = null;
  await page.route('**/api/increment', async (route) => {
    keys.push(route.request().headers()['idempotency-key']);
    if (keys.length === 1) return route.abort('connectionreset'); // never reached the server
    if (keys.length === 2) {
      await route.fetch(); // applied by the server, but the answer is lost on the way back
      return route.abort('connectionreset');
    }
    const response = await route.fetch();
    replayed = response.headers()['idempotent-replayed'] ?? null;
    return route.fulfill({ response });
  });
  await page.fill('#amount', '5');
  await page.click('#inc');
  await waitForValue(page, start.value + 5);
  await page.locator('#pending').waitFor({ state: 'hidden' });

  assert.equal(keys.length, 3);
  assert.equal(new Set(keys).size, 1, 'every attempt carried the same key');
  assert.match(keys[0], /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.equal(replayed, 'true', 'the retry got the stored answer');
  const { entries } = await api.audit(start.version);
  assert.deepEqual(entries.map((e) => [e.request_id, e.operation, e.amount]), [[keys[0], 'increment', 5]]);
  assert.equal((await api.value()).value, start.value + 5);
  await page.waitForTimeout(500);
  assert.equal(await shown(page), start.value + 5);
  await context.close();
});

test('clicks queued during an outage survive a reload and are applied exactly once, in order', { timeout: 90_000 }, async () => {
  const context = await browser.newContext();
  const page = await openApp(context);
  const start = await api.value();
  await waitForValue(page, start.value);
  const saved = () => page.evaluate(() => sessionStorage.getItem('acidizer.queue'));
  let down = true;
  const keys = [];
  await page.route('**/api/increment', async (route) => {
    const key = route.request().headers()['idempotency-key'];
    keys.push(key);
    if (!down) return route.continue();
    // The very first attempt reaches the server, but its answer is lost on the way back.
    if (keys.length === 1) await route.fetch();
    return route.abort('connectionrefused');
  });
  // Leaving with clicks queued asks first; the reload is confirmed.
  const dialogs = [];
  page.on('dialog', (dialog) => {
    dialogs.push(dialog.type());
    dialog.accept();
  });

  await page.fill('#amount', '3');
  await page.click('#inc');
  await page.fill('#amount', '4');
  await page.click('#inc');
  await page.locator('#pending', { hasText: /2 clicks/ }).waitFor();
  const before = JSON.parse(await saved());
  assert.deepEqual(before.map((j) => [j.operation, j.amount]), [['increment', 3], ['increment', 4]]);
  assert.equal(before[0].key, keys[0]);

  await page.reload();
  assert.deepEqual(dialogs, ['beforeunload']);
  // Still failing: the restored clicks show as pending and are retried with their own keys.
  await page.locator('#pending', { hasText: /2 clicks/ }).waitFor();
  const sentBefore = keys.length;
  await until(() => keys.length > sentBefore, 10_000);
  assert.equal((await api.value()).version, start.version + 1, 'only the first attempt got through');

  down = false;
  await waitForValue(page, start.value + 7, 30_000);
  await page.locator('#pending').waitFor({ state: 'hidden' });
  assert.deepEqual([...new Set(keys)], before.map((j) => j.key), 'two clicks, two keys, kept across the reload');
  const now = await api.value();
  assert.equal(now.value, start.value + 7);
  assert.equal(now.version, start.version + 2, 'each click applied exactly once');
  const { entries } = await api.audit(start.version);
  assert.deepEqual(entries.map((e) => [e.request_id, e.operation, e.amount]), before.map((j) => [j.key, 'increment', j.amount]));
  assert.equal(await saved(), null, 'nothing left to restore');
  await context.close();
});

test('after repeated failures sending pauses, clicks queue with their keys and go out in order', { timeout: 90_000 }, async () => {
  const context = await browser.newContext();
  const page = await openApp(context);
  const start = await api.value();
  await waitForValue(page, start.value);
  let down = true;
  const attempts = [];
  await page.route(/\/api\/(increment|decrement)$/, (route) => {
    const r = route.request();
    attempts.push({ at: Date.now(), key: r.headers()['idempotency-key'], op: r.url().split('/').pop(), amount: JSON.parse(r.postData()).amount });
    return down ? route.abort('connectionrefused') : route.continue();
  });

  await page.fill('#amount', '1');
  await page.click('#inc');
  await page.locator('#notice', { hasText: 'Sending is paused' }).waitFor({ timeout: 20_000 });
  const opened = Date.now();
  assert.equal(attempts.length, 5, 'five failures open the breaker');
  assert.equal(await page.locator('#notice').getAttribute('data-tone'), 'warn');

  await page.fill('#amount', '2');
  await page.click('#dec');
  await page.fill('#amount', '3');
  await page.click('#inc');
  await page.locator('#pending', { hasText: /^3 clicks waiting · sending paused, next try in \d+s$/ }).waitFor();
  down = false;

  await waitForValue(page, start.value + 1 - 2 + 3, 30_000);
  await page.locator('#pending').waitFor({ state: 'hidden' });
  await page.locator('#notice', { hasText: 'sending again' }).waitFor();
  const later = attempts.slice(5);
  assert.ok(later[0].at - opened >= 8_000, `the cool-down was respected (${later[0].at - opened} ms)`);
  // Each click kept one key across all its attempts: three clicks, three keys.
  const keys = [...new Set(attempts.map((a) => a.key))];
  assert.equal(keys.length, 3);
  const { entries } = await api.audit(start.version);
  assert.deepEqual(
    entries.map((e) => [e.request_id, e.operation, e.amount]),
    [[keys[0], 'increment', 1], [keys[1], 'decrement', 2], [keys[2], 'increment', 3]],
  );
  await context.close();
});

test('refusals are shown in plain words; an invalid amount is explained and sends nothing', { timeout: 60_000 }, async () => {
  const before = await api.value();
  const context = await browser.newContext();
  const page = await openApp(context);
  const increments = countRequests(page, '/api/increment');
  try {
    await api.set(MAX - 2);
    await waitForValue(page, MAX - 2);
    // What the server says about going past the limit, asked directly.
    const res = await fetch(`${server.base}/api/increment`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ amount: 5 }),
    });
    assert.equal(res.status, 409);
    const { detail } = await res.json();
    await page.fill('#amount', '5');
    await page.click('#inc');
    await page.locator('#notice[data-tone="error"]').waitFor();
    assert.equal(await page.locator('#notice').textContent(), `Not applied: ${detail}`);
    assert.equal(await page.locator('#notice').getAttribute('aria-live'), 'polite');
    assert.equal(await shown(page), MAX - 2);
    assert.equal(increments.n, 1, 'a 409 is final: not retried');

    for (const bad of ['0', '1000001', '2.5', 'ten']) {
      await page.fill('#amount', bad);
      await page.locator('#amount-error').waitFor();
      assert.equal(await page.locator('#amount-error').textContent(), 'Enter a whole number from 1 to 1,000,000.');
      assert.equal(await page.locator('#amount').getAttribute('aria-invalid'), 'true');
    }
    await page.click('#inc');
    assert.equal(await page.evaluate(() => document.activeElement.id), 'amount', 'focus goes to the field to fix');
    await page.waitForTimeout(300);
    assert.equal(increments.n, 1, 'nothing sent with an invalid amount');

    await page.fill('#amount', '1,000');
    await page.locator('#amount-error').waitFor({ state: 'hidden' });
    assert.equal(await page.locator('#amount').getAttribute('aria-invalid'), 'false');
    assert.equal(await page.locator('[data-amount="1000"]').getAttribute('aria-pressed'), 'true');
    await page.click('[data-amount="10"]');
    assert.equal(await page.inputValue('#amount'), '10');
  } finally {
    await api.set(before.value);
    await context.close();
  }
});

test('keys + and − (and the arrows) change the number, but not while typing in the field; focus is visible', { timeout: 60_000 }, async () => {
  const context = await browser.newContext();
  const page = await openApp(context);
  const changes = countRequests(page, '/api/increment');
  const start = (await api.value()).value;
  await waitForValue(page, start);
  await page.click('[data-amount="1"]');
  await page.evaluate(() => document.activeElement.blur());

  await page.keyboard.press('+');
  await waitForValue(page, start + 1);
  await page.keyboard.press('-');
  await waitForValue(page, start);
  await page.keyboard.press('ArrowUp');
  await waitForValue(page, start + 1);
  await page.keyboard.press('ArrowDown');
  await waitForValue(page, start);
  assert.equal(changes.n, 2);

  await page.focus('#amount');
  await page.keyboard.press('End');
  await page.keyboard.press('+');
  await page.keyboard.press('ArrowUp');
  await page.waitForTimeout(400);
  assert.equal(changes.n, 2, 'keys typed into the field stay in the field');
  assert.equal(await shown(page), start);

  // Tab to the increment button: the focus ring must be there.
  await page.evaluate(() => document.activeElement.blur());
  for (let i = 0; i < 12 && (await page.evaluate(() => document.activeElement.id)) !== 'inc'; i++) {
    await page.keyboard.press('Tab');
  }
  const ring = await page.evaluate(() => {
    const s = getComputedStyle(document.activeElement);
    return { id: document.activeElement.id, style: s.outlineStyle, width: parseFloat(s.outlineWidth) };
  });
  assert.deepEqual(ring, { id: 'inc', style: 'solid', width: 3 });
  const names = await page.evaluate(() => [...document.querySelectorAll('.step')].map((b) => b.textContent.trim()));
  assert.ok(names.some((n) => n.includes('Increment')) && names.some((n) => n.includes('Decrement')));
  await context.close();
});

test('the change animation plays, except with prefers-reduced-motion', { timeout: 60_000 }, async () => {
  const results = {};
  for (const reducedMotion of ['no-preference', 'reduce']) {
    const context = await browser.newContext({ reducedMotion });
    const page = await openApp(context);
    const { value } = await api.increment(1);
    await waitForValue(page, value);
    results[reducedMotion] = await page.evaluate(() => {
      const el = document.getElementById('value');
      return { running: el.getAnimations().length, name: getComputedStyle(el).animationName };
    });
    await context.close();
  }
  assert.ok(results['no-preference'].running > 0, JSON.stringify(results));
  assert.match(results['no-preference'].name, /rise/);
  assert.deepEqual(results.reduce, { running: 0, name: 'none' });
});

test('axe-core finds no violations, in the light and the dark theme', { timeout: 60_000 }, async () => {
  // Injecting axe needs an inline script, which the page's CSP rightly forbids.
  const context = await browser.newContext({ bypassCSP: true });
  const page = await openApp(context);
  await api.increment(2);
  await page.locator('#changes li').first().waitFor();
  await page.addScriptTag({ path: AXE });
  const audit = async (label) => {
    // Contrast is judged on the settled page, not halfway through a row's fade-in.
    // (The live indicator's pulse runs forever and changes no text colour.)
    await page.waitForFunction(() => document.getAnimations()
      .every((a) => a.playState !== 'running' || a.effect.getTiming().iterations === Infinity));
    const result = await page.evaluate(() => axe.run(document, { resultTypes: ['violations'] }));
    const summary = result.violations.map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
    assert.deepEqual(summary, [], `${label}: ${JSON.stringify(summary)}`);
  };
  const background = () => page.evaluate(() => getComputedStyle(document.body).backgroundColor);

  await page.emulateMedia({ colorScheme: 'light' });
  const light = await background();
  await audit('light');
  await page.fill('#amount', '0'); // the error state too
  await audit('light, invalid amount');
  await page.fill('#amount', '1');

  await page.emulateMedia({ colorScheme: 'dark' });
  assert.notEqual(await background(), light, 'the dark theme is applied');
  await audit('dark');
  await page.fill('#amount', '0');
  await audit('dark, invalid amount');
  await context.close();
});

test('a 375 px phone never scrolls sideways, even for the widest number; a large screen uses two columns', { timeout: 60_000 }, async () => {
  const before = await api.value();
  try {
    await api.set(-MAX);
    const phone = await browser.newContext({ viewport: { width: 375, height: 667 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 });
    const page = await openApp(phone);
    await waitForValue(page, -MAX);
    const layout = await page.evaluate(() => {
      const value = document.getElementById('value').getBoundingClientRect();
      const targets = [...document.querySelectorAll('button, input')].map((e) => e.getBoundingClientRect().height);
      return {
        scroll: document.documentElement.scrollWidth,
        client: document.documentElement.clientWidth,
        valueLeft: value.left,
        valueRight: value.right,
        smallestTarget: Math.min(...targets),
      };
    });
    assert.ok(layout.scroll <= layout.client, `no horizontal overflow: ${JSON.stringify(layout)}`);
    assert.ok(layout.valueLeft >= 0 && layout.valueRight <= 375, `the number fits: ${JSON.stringify(layout)}`);
    assert.ok(layout.smallestTarget >= 44, `touch targets of at least 44 px: ${JSON.stringify(layout)}`);
    await phone.close();

    const desk = await browser.newContext({ viewport: { width: 1920, height: 1080 } });
    const big = await openApp(desk);
    const columns = await big.evaluate(() => ({
      hero: document.querySelector('.hero').getBoundingClientRect().left,
      trend: document.querySelector('.trend').getBoundingClientRect().left,
      overflow: document.documentElement.scrollWidth > document.documentElement.clientWidth,
    }));
    assert.ok(columns.trend > columns.hero && !columns.overflow, JSON.stringify(columns));
    await desk.close();
  } finally {
    await api.set(before.value);
  }
});
