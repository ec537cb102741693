// Request metrics and object metrics against the built Worker (build/entry.js: the fetch handler
// and the Durable Objects) under plain Miniflare. The local runtime drops Analytics Engine points, so here the METRICS dataset is a
// wrapped binding: a small capture Worker whose writeDataPoint prints each point as one tagged
// line, which this test reads from the runtime's stdout together with the request log lines.
// Real requests go through the real Worker and Durable Object; the test then asserts exactly one
// point per request with every field, the log lines' problem types and methods, and parses
// GET /api/metrics with prometheus_client's parser (.venv).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { Miniflare, Log, LogLevel } from 'miniflare';
import WebSocket from 'ws';

const ROOT = new URL('../../', import.meta.url).pathname;
const SCRIPT = path.join(ROOT, 'build/entry.js');
const VERSION_ID = '7d3c1e9a-0b5f-4c8e-9a41-3f2b6d8e1c05';
const ADMIN = 'ops-test-admin-token';
const TAG = 'metrics-capture ';

// The capture Worker: its default export is called with its own bindings and returns the object
// the wrapped binding becomes. console.log is synchronous, so no point can be lost to a
// cancelled promise when the request ends.
const CAPTURE = `export default function () {
  return { writeDataPoint(point) { console.log(${JSON.stringify(TAG)} + JSON.stringify(point)); } };
}`;

let mf;
let base;
let out = '';

before(async () => {
  assert.ok(existsSync(SCRIPT), `${SCRIPT} is missing: run sh scripts/build.sh`);
  mf = new Miniflare({
    log: new Log(LogLevel.WARN),
    cf: false,
    host: '127.0.0.1',
    port: 0,
    handleRuntimeStdio(stdout, stderr) {
      stdout.on('data', (d) => (out += d));
      stderr.on('data', (d) => (out += d));
    },
    workers: [
      {
        name: 'number-acidizer',
        modules: true,
        scriptPath: SCRIPT,
        modulesRoot: path.dirname(SCRIPT),
        modulesRules: [{ type: 'CompiledWasm', include: ['**/*.wasm'], fallthrough: true }, { type: 'ESModule', include: ['**/*.js'], fallthrough: true }],
        compatibilityDate: '2026-04-01',
        durableObjects: { COUNTER: { className: 'Counter', useSQLite: true }, RELAY: { className: 'Relay', useSQLite: true } },
        durableObjectsPersist: false,
        bindings: {
          RATE_LIMIT_PER_10S: '3',
          ADMIN_TOKEN: ADMIN,
          BATCH_MAX_IN_FLIGHT: '2',
          CF_VERSION_METADATA: { id: VERSION_ID, tag: '', timestamp: '2026-11-29T20:00:00Z' },
        },
        wrappedBindings: { METRICS: { scriptName: 'capture' } },
      },
      { name: 'capture', modules: true, script: CAPTURE },
    ],
  });
  base = (await mf.ready).href.replace(/\/$/, '');
});

after(async () => {
  await mf?.dispose();
});

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function points() {
  return out
    .split('\n')
    .filter((l) => l.startsWith(TAG))
    .map((l) => JSON.parse(l.slice(TAG.length)));
}

function requestLines() {
  return out
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => {
      try {
        return JSON.parse(l);
      } catch {
        return null;
      }
    })
    .filter((l) => l && l.msg === 'request');
}

/** Waits until `n` points were captured, then a little longer to catch any extra one. */
async function settle(n) {
  for (let i = 0; i < 100 && points().length < n; i++) await sleep(50);
  await sleep(300);
}

async function send(method, p, headers = {}, body) {
  const r = await fetch(base + p, { method, headers, body });
  return { status: r.status, headers: r.headers, text: await r.text() };
}

test('every request is one data point with route, method, status class, outcome, version, colo, problem, count, latency, amount, status', async () => {
  const key = `ops-${Date.now()}`;
  const json = { 'content-type': 'application/json' };
  const expected = [];
  const expect = (r, e) => {
    expected.push(e);
    return r;
  };

  let r = expect(await send('GET', '/api/value'), ['/api/value', 'GET', '2xx', 'ok', '', 0, 200]);
  assert.equal(r.status, 200);
  r = expect(await send('HEAD', '/api/value'), ['/api/value', 'HEAD', '2xx', 'ok', '', 0, 200]);
  assert.equal(r.status, 200);
  r = expect(await send('POST', '/api/increment', { 'idempotency-key': key }), ['/api/increment', 'POST', '2xx', 'applied', '', 1, 200]);
  assert.equal(r.status, 200);
  const first = r.text;
  r = expect(await send('POST', '/api/increment', { 'idempotency-key': key }), ['/api/increment', 'POST', '2xx', 'replayed', '', 1, 200]);
  assert.equal(r.text, first);
  // A body: the path that reads it first.
  r = expect(await send('POST', '/api/increment', json, '{"amount": 3}'), ['/api/increment', 'POST', '2xx', 'applied', '', 3, 200]);
  assert.equal(r.status, 200);
  // Refused by the object: If-Match names another version.
  r = expect(await send('POST', '/api/decrement', { 'if-match': '"999"' }), ['/api/decrement', 'POST', '4xx', 'rejected', 'precondition-failed', 1, 412]);
  assert.equal(r.status, 412);
  r = expect(await send('POST', '/api/decrement'), ['/api/decrement', 'POST', '2xx', 'applied', '', 1, 200]);
  assert.equal(r.status, 200);
  // The fourth change in 10 s from this client: refused by the object's rate limit.
  r = expect(await send('POST', '/api/increment'), ['/api/increment', 'POST', '4xx', 'rejected', 'rate-limited', 1, 429]);
  assert.equal(r.status, 429);
  // Refused by the edge.
  r = expect(await send('GET', '/api/value?bad=1'), ['/api/value', 'GET', '4xx', 'rejected', 'invalid-query', 0, 400]);
  assert.equal(r.status, 400);
  r = expect(await send('GET', '/api/no/such/thing'), ['other', 'GET', '4xx', 'rejected', 'not-found', 0, 404]);
  assert.equal(r.status, 404);
  r = expect(await send('DELETE', '/api/value'), ['/api/value', 'OTHER', '4xx', 'rejected', 'method-not-allowed', 0, 405]);
  assert.equal(r.status, 405);
  r = expect(await send('GET', '/api/metrics'), ['/api/metrics', 'GET', '4xx', 'rejected', 'unauthorized', 0, 401]);
  assert.equal(r.status, 401);
  r = expect(await send('GET', '/api/metrics', { authorization: `Bearer ${ADMIN}` }), ['/api/metrics', 'GET', '2xx', 'ok', '', 0, 200]);
  assert.equal(r.status, 200);
  // A socket: the upgrade's point has status 101.
  expected.push(['/api/ws', 'GET', '1xx', 'ok', '', 0, 101]);
  await new Promise((resolve, reject) => {
    const ws = new WebSocket(base.replace('http', 'ws') + '/api/ws');
    const timer = setTimeout(() => reject(new Error('no snapshot within 10 s')), 10_000);
    ws.on('message', (m) => {
      assert.equal(JSON.parse(m.toString()).type, 'snapshot');
      clearTimeout(timer);
      ws.close();
      resolve();
    });
    ws.on('error', reject);
  });

  await settle(expected.length);
  const got = points();
  if (process.env.SHOW_POINTS) console.log(got.map((p) => JSON.stringify(p)).join("\n"));
  assert.equal(got.length, expected.length, `one point per request:\n${got.map((p) => JSON.stringify(p)).join('\n')}`);
  got.forEach((p, i) => {
    const [route, method, klass, outcome, problem, amount, status] = expected[i];
    const what = `point ${i} ${JSON.stringify(p)}`;
    assert.deepEqual(p.indexes, [route], what);
    assert.equal(p.blobs.length, 7, what);
    assert.deepEqual(p.blobs.slice(0, 4), [route, method, klass, outcome], what);
    assert.equal(p.blobs[4], VERSION_ID, what);
    assert.match(p.blobs[5], /^[A-Z0-9]{3,8}$/, `colo: ${what}`);
    assert.equal(p.blobs[6], problem, what);
    assert.equal(p.doubles.length, 4, what);
    assert.equal(p.doubles[0], 1, what);
    assert.ok(p.doubles[1] >= 0 && p.doubles[1] < 60_000, `latency: ${what}`);
    assert.equal(p.doubles[2], amount, what);
    assert.equal(p.doubles[3], status, what);
  });

  // The log lines of the same requests: HEAD is HEAD, refusals by the object carry their
  // problem type, and every line names the deployed version.
  const lines = requestLines();
  assert.ok(lines.length >= expected.length - 1, `log lines: ${lines.length}`);
  assert.ok(lines.some((l) => l.method === 'HEAD' && l.path === '/api/value'), 'a HEAD line');
  const limited = lines.find((l) => l.status === 429);
  assert.equal(limited?.problem, 'rate-limited');
  assert.equal(lines.find((l) => l.status === 412)?.problem, 'precondition-failed');
  assert.ok(lines.every((l) => l.version_id === VERSION_ID), 'every line carries the version id');
});

test('GET /api/metrics is Prometheus text that prometheus_client parses, with the counters and gauges', async () => {
  const python = path.join(ROOT, '.venv/bin/python');
  assert.ok(existsSync(python), '.venv is missing: run sh scripts/setup.sh test');
  const r = await send('GET', '/api/metrics', { authorization: `Bearer ${ADMIN}` });
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8');
  assert.equal(r.headers.get('cache-control'), 'no-store');
  const parsed = spawnSync(python, [path.join(ROOT, 'tests/ops/parse_prometheus.py')], { input: r.text, encoding: 'utf8', timeout: 30_000 });
  assert.equal(parsed.status, 0, parsed.stderr);
  const families = JSON.parse(parsed.stdout);
  const value = (name, labels = {}) => {
    const f = families[name];
    assert.ok(f, `${name} missing: ${Object.keys(families)}`);
    const s = f.samples.find(([, l]) => JSON.stringify(l) === JSON.stringify(labels));
    assert.ok(s, `${name}${JSON.stringify(labels)} missing`);
    return s[2];
  };
  const health = JSON.parse((await send('GET', '/api/health')).text);
  // The first test applied 3 changes, replayed 1 and had 1 refused by the rate limit.
  for (const [name, type] of [['acidizer_commits', 'counter'], ['acidizer_replays', 'counter'], ['acidizer_rate_limited', 'counter'], ['acidizer_value', 'gauge'], ['acidizer_version', 'gauge'], ['acidizer_sockets', 'gauge'], ['acidizer_relays', 'gauge'], ['acidizer_database_bytes', 'gauge'], ['acidizer_audit_entries', 'gauge'], ['acidizer_start_time_seconds', 'gauge']]) {
    assert.equal(families[name]?.type, type, name);
    assert.ok(families[name].help.length > 0, name);
  }
  assert.equal(value('acidizer_commits', {}), 3);
  assert.equal(families.acidizer_commits.samples[0][0], 'acidizer_commits_total');
  assert.equal(value('acidizer_replays'), 1);
  assert.equal(value('acidizer_rate_limited', { limit: 'changes' }), 1);
  assert.equal(value('acidizer_rate_limited', { limit: 'sockets' }), 0);
  assert.equal(value('acidizer_value'), health.value);
  assert.equal(value('acidizer_version'), health.version);
  assert.equal(value('acidizer_audit_entries'), health.audit_entries);
  assert.equal(value('acidizer_relays'), health.relays);
  assert.equal(value('acidizer_database_bytes'), health.database_bytes);
  assert.ok(value('acidizer_start_time_seconds') > 1.7e9);
  // The parser is a real one: it refuses a malformed exposition.
  const bad = spawnSync(python, [path.join(ROOT, 'tests/ops/parse_prometheus.py')], { input: r.text.replace('acidizer_version ', 'acidizer_version{ '), encoding: 'utf8', timeout: 30_000 });
  assert.notEqual(bad.status, 0, 'a malformed exposition must not parse');
});

test('concurrent changes, which the edge may batch into one call to the counter, still yield one point each', async () => {
  await settle(0);
  const before = points().length;
  const n = 16;
  const stamp = Date.now();
  const replies = await Promise.all(
    Array.from({ length: n }, (_, i) =>
      send('POST', '/api/admin/set', { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json', 'idempotency-key': `burst-${stamp}-${i}` }, JSON.stringify({ value: i })),
    ),
  );
  replies.forEach((r) => assert.equal(r.status, 200, r.text));
  await settle(before + n);
  const got = points().slice(before);
  assert.equal(got.length, n, `one point per request:\n${got.map((p) => JSON.stringify(p)).join('\n')}`);
  for (const p of got) {
    assert.deepEqual(p.blobs.slice(0, 5), ['/api/admin/set', 'POST', '2xx', 'applied', VERSION_ID]);
  }
  assert.deepEqual(got.map((p) => p.doubles[2]).sort((a, b) => a - b), [...Array(n).keys()]);
  // And batches did form: some call to the counter carried more than one of these requests.
  const calls = JSON.parse((await send('GET', '/api/health')).text).calls_by_size;
  const shared = Object.entries(calls).filter(([size]) => size !== '1').reduce((sum, [, c]) => sum + c, 0);
  assert.ok(shared > 0, `no batch formed: ${JSON.stringify(calls)}`);
});
