// The smoke test's steps (scripts/smoke.sh runs this under a timeout). Every step has its own
// deadline too, so a failure names the step that failed.
//
// SMOKE_VERSION_ID, if set, sends Cloudflare-Workers-Version-Overrides with every request, so a
// gradual rollout's new version is tested no matter which version the traffic split would pick.
// SMOKE_WORKER names the Worker for that header (default
// number-acidizer-production).
import { randomUUID } from 'node:crypto';
import WebSocket from 'ws';

const base = (process.argv[2] ?? '').replace(/\/+$/, '');
if (!/^https?:\/\/[^/]+/.test(base)) {
  console.error('usage: node scripts/smoke.mjs URL');
  process.exit(2);
}
const headers = {};
if (process.env.SMOKE_VERSION_ID) {
  const worker = process.env.SMOKE_WORKER || 'number-acidizer-production';
  headers['cloudflare-workers-version-overrides'] = `${worker}="${process.env.SMOKE_VERSION_ID}"`;
}
const STEP_MS = 15_000;

function fail(step, why) {
  console.error(`smoke: FAIL ${step}: ${why}`);
  process.exit(1);
}
function ok(step, detail = '') {
  console.log(`smoke: ok   ${step}${detail ? ` (${detail})` : ''}`);
}

async function request(step, method, path, extra = {}) {
  let r;
  try {
    r = await fetch(base + path, { method, headers: { ...headers, ...extra }, signal: AbortSignal.timeout(STEP_MS) });
  } catch (e) {
    fail(step, `${method} ${path}: ${e.cause?.message ?? e.message}`);
  }
  const text = await r.text();
  return { status: r.status, headers: r.headers, text };
}

function json(step, r) {
  try {
    return JSON.parse(r.text);
  } catch {
    fail(step, `not JSON: ${r.text.slice(0, 200)}`);
  }
}

// 1. Health.
let r = await request('health', 'GET', '/api/health');
if (r.status !== 200) fail('health', `status ${r.status}: ${r.text.slice(0, 200)}`);
const health = json('health', r);
if (health.status !== 'ok') fail('health', `status is ${JSON.stringify(health.status)}`);
if (health.schema_version !== health.latest_schema_version) fail('health', `schema ${health.schema_version} of ${health.latest_schema_version}`);
ok('health', `version ${health.version}, ${health.sockets} sockets`);

// 2. A read.
r = await request('read', 'GET', '/api/value');
if (r.status !== 200) fail('read', `status ${r.status}`);
const before = json('read', r);
if (!Number.isSafeInteger(before.value) || !Number.isSafeInteger(before.version)) fail('read', r.text);
if (r.headers.get('etag') !== `"${before.version}"`) fail('read', `ETag ${r.headers.get('etag')} for version ${before.version}`);
ok('read', `value ${before.value}, version ${before.version}`);

// 3. A socket, open before the change so that it must receive it.
const wsUrl = `${base.replace(/^http/, 'ws')}/api/ws`;
const socket = new WebSocket(wsUrl, { headers, handshakeTimeout: STEP_MS });
const updates = [];
let updateWaiter = null;
const snapshot = await new Promise((resolve) => {
  const timer = setTimeout(() => fail('socket', `no snapshot within ${STEP_MS} ms`), STEP_MS);
  socket.on('error', (e) => fail('socket', e.message));
  socket.on('unexpected-response', (_req, res) => fail('socket', `handshake answered ${res.statusCode}`));
  socket.on('message', (data) => {
    let m;
    try {
      m = JSON.parse(data.toString());
    } catch {
      fail('socket', `not JSON: ${data.toString().slice(0, 200)}`);
    }
    if (m.type === 'snapshot') {
      clearTimeout(timer);
      resolve(m);
    } else if (m.type === 'update') {
      updates.push(m);
      updateWaiter?.();
    } else {
      fail('socket', `unexpected message ${data.toString().slice(0, 200)}`);
    }
  });
});
ok('socket', `snapshot at version ${snapshot.version}`);

// 4. A keyed change.
const key = `smoke-${randomUUID()}`;
r = await request('change', 'POST', '/api/increment', { 'idempotency-key': key });
if (r.status !== 200) fail('change', `status ${r.status}: ${r.text.slice(0, 300)}`);
const change = json('change', r);
if (change.operation !== 'increment' || change.amount !== 1 || change.request_id !== key) fail('change', r.text);
if (change.value !== change.previous_value + 1) fail('change', `value ${change.value} after ${change.previous_value}`);
if (r.headers.get('idempotent-replayed') !== null) fail('change', 'a first change marked as a replay');
ok('change', `version ${change.version}`);

// 5. Its replay: the same bytes, marked, nothing applied.
const replay = await request('replay', 'POST', '/api/increment', { 'idempotency-key': key });
if (replay.status !== 200) fail('replay', `status ${replay.status}: ${replay.text.slice(0, 300)}`);
if (replay.text !== r.text) fail('replay', `not byte-identical:\n${r.text}\n${replay.text}`);
if (replay.headers.get('idempotent-replayed') !== 'true') fail('replay', 'no Idempotent-Replayed: true');
ok('replay', 'byte-identical, Idempotent-Replayed: true');

// 6. The socket receives the change.
const seen = () => updates.find((u) => u.version === change.version);
if (!seen()) {
  await new Promise((resolve) => {
    const timer = setTimeout(() => fail('broadcast', `no update for version ${change.version} within ${STEP_MS} ms`), STEP_MS);
    updateWaiter = () => {
      if (seen()) {
        clearTimeout(timer);
        resolve();
      }
    };
  });
}
const u = seen();
if (u.value !== change.value || u.operation !== 'increment' || u.amount !== 1) fail('broadcast', JSON.stringify(u));
ok('broadcast', `update for version ${u.version}`);
socket.close();

// 7. Put the counter back.
const back = await request('restore', 'POST', '/api/decrement', { 'idempotency-key': `${key}-back` });
if (back.status !== 200) fail('restore', `status ${back.status}: ${back.text.slice(0, 300)}`);
ok('restore', `version ${json('restore', back).version}`);

// 8. Health again, after the writes.
r = await request('health again', 'GET', '/api/health');
if (r.status !== 200 || json('health again', r).status !== 'ok') fail('health again', `status ${r.status}`);
ok('health again');
console.log(`smoke: passed against ${base}`);
process.exit(0);
