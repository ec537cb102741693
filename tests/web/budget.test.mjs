// The shipped files: the first load's gzip budget, the embed's, no stray files, no inline code
// (the CSP forbids it), and the security headers in web/_headers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join, posix } from 'node:path';
import { gzipSync } from 'node:zlib';

const WEB = new URL('../../web/', import.meta.url).pathname;
const BUDGET = 30 * 1024;
const read = (path) => readFileSync(join(WEB, path));
const html = read('index.html').toString();

/** Site paths the page references: stylesheets, icons, preloads, scripts, images. */
function htmlRefs(text) {
  const refs = [...text.matchAll(/<(?:link|script|img)\b[^>]*?\b(?:href|src)="([^"]+)"/g)].map((m) => m[1]);
  return refs.map((r) => r.replace(/^\//, ''));
}

/** Every module reachable from `entry` through static imports. */
function moduleGraph(entry) {
  const seen = new Set();
  const visit = (path) => {
    if (seen.has(path)) return;
    seen.add(path);
    const source = read(path).toString();
    for (const [, spec] of source.matchAll(/^import\s[^'"]*['"](\.{1,2}\/[^'"]+)['"]/gm)) {
      visit(posix.normalize(posix.join(posix.dirname(path), spec)));
    }
  };
  visit(entry);
  return seen;
}

const entry = htmlRefs(html).find((r) => r.endsWith('app.mjs'));
const firstLoad = new Set(['index.html', ...htmlRefs(html), ...moduleGraph(entry)]);

test('the first load is under 30 KB gzipped', () => {
  let total = 0;
  const sizes = {};
  for (const path of firstLoad) {
    sizes[path] = gzipSync(read(path), { level: 9 }).length;
    total += sizes[path];
  }
  assert.ok(firstLoad.has('styles.css') && firstLoad.has('js/sender.mjs') && firstLoad.has('js/live.mjs'));
  assert.ok(total < BUDGET, `first load is ${total} bytes gzipped: ${JSON.stringify(sizes)}`);
  console.log(`first load: ${firstLoad.size} files, ${total} bytes gzipped (budget ${BUDGET})`);
});

// The embeddable counter: one module other sites load, and the page that shows how.
const EMBED_BUDGET = 4 * 1024;
const embedPage = read('embed.html').toString();
const embedFiles = new Set(['embed.html', 'embed.js']);

test('every page file in web/ is part of the first load or of the embed (nothing shipped for nothing)', () => {
  // Other static files (the API description) are not the page's and are not counted.
  const files = readdirSync(WEB, { recursive: true, withFileTypes: true })
    .filter((d) => d.isFile())
    .map((d) => posix.relative(WEB, posix.join(d.parentPath ?? d.path, d.name)))
    .filter((f) => /\.(html|css|m?js|svg)$/.test(f));
  assert.deepEqual(files.sort(), [...firstLoad, ...embedFiles].sort());
  // The embed page needs nothing the app does not already ship, besides the module.
  for (const ref of htmlRefs(embedPage)) assert.ok(firstLoad.has(ref) || embedFiles.has(ref), ref);
});

test('the embed is one module under 4 KB gzipped, with no imports and no HTML parsing', () => {
  const source = read('embed.js');
  const size = gzipSync(source, { level: 9 }).length;
  assert.ok(size < EMBED_BUDGET, `embed.js is ${size} bytes gzipped`);
  console.log(`embed.js: ${size} bytes gzipped (budget ${EMBED_BUDGET})`);
  const text = source.toString();
  assert.doesNotMatch(text, /^import\s/m, 'one file: no imports');
  assert.doesNotMatch(text, /innerHTML|outerHTML|insertAdjacentHTML|document\.write/);
  assert.match(text, /attachShadow\(\{ mode: 'open' \}\)/);
  assert.match(text, /aria-live', 'polite'/);
  assert.match(text, /prefers-reduced-motion/);
  assert.doesNotMatch(embedPage, /<script(?![^>]*\bsrc=)[^>]*>/, 'inline <script>');
  assert.doesNotMatch(embedPage, /<style\b|\sstyle=|\son[a-z]+=/, 'inline style or handler');
});

test('every module is preloaded, so the browser fetches them in parallel, not in a chain', () => {
  const preloaded = [...html.matchAll(/<link rel="modulepreload" href="\/([^"]+)"/g)].map((m) => m[1]);
  const needed = [...moduleGraph(entry)].filter((m) => m !== entry);
  assert.deepEqual(preloaded.sort(), needed.sort());
});

test('no inline script, style or event handler (the CSP would block them)', () => {
  assert.doesNotMatch(html, /<script(?![^>]*\bsrc=)[^>]*>/, 'inline <script>');
  assert.doesNotMatch(html, /<style\b/, '<style> element');
  assert.doesNotMatch(html, /\sstyle=/, 'style attribute');
  assert.doesNotMatch(html, /\son[a-z]+=/, 'event handler attribute');
  for (const path of moduleGraph(entry)) {
    const source = read(path).toString();
    assert.doesNotMatch(source, /innerHTML|outerHTML|insertAdjacentHTML|document\.write|setAttribute\('style'/, path);
  }
});

test('_headers: a strict CSP and the other security headers for every path', () => {
  const rules = new Map();
  let current = null;
  for (const line of read('_headers').toString().split('\n')) {
    if (/^\S/.test(line) && !line.startsWith('#')) rules.set((current = line.trim()), []);
    else if (current && line.trim() && !line.trim().startsWith('#')) rules.get(current).push(line.trim());
  }
  const all = rules.get('/*');
  assert.ok(all, 'a /* rule');
  const header = (name) => all.find((l) => l.toLowerCase().startsWith(`${name.toLowerCase()}:`))?.split(/:\s*/).slice(1).join(':');
  const csp = Object.fromEntries(header('Content-Security-Policy').split(';').map((d) => d.trim().split(/\s+/)).map(([k, ...v]) => [k, v.join(' ')]));
  assert.equal(csp['default-src'], "'none'");
  for (const d of ['script-src', 'style-src', 'connect-src', 'img-src']) assert.equal(csp[d], "'self'", d);
  assert.equal(csp['frame-ancestors'], "'none'");
  assert.equal(csp['base-uri'], "'none'");
  assert.equal(csp['form-action'], "'none'");
  assert.equal(header('X-Content-Type-Options'), 'nosniff');
  assert.equal(header('Referrer-Policy'), 'no-referrer');
  assert.match(header('Permissions-Policy'), /camera=\(\)/);
  assert.equal(header('Cache-Control'), 'no-cache');
  for (const path of ['/js/*', '/styles.css', '/favicon.svg']) {
    assert.deepEqual(rules.get(path), ['! Cache-Control', 'Cache-Control: public, max-age=0, must-revalidate'], path);
  }
  // Any page may load the embed as a module (CORS), isolated pages too (CORP).
  assert.deepEqual(rules.get('/embed.js'), [
    '! Cache-Control',
    'Cache-Control: public, max-age=0, must-revalidate',
    'Access-Control-Allow-Origin: *',
    'Cross-Origin-Resource-Policy: cross-origin',
  ]);
});
