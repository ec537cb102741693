// The live stream: resume with since=, version order, gaps, backoff, keepalive, offline.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createLive } from '../../web/js/live.mjs';
import { createClock, fakeWebSocketClass } from './fakes.mjs';

const URL = 'wss://counter.example/api/ws';
const update = (version, value = version * 10) => ({
  type: 'update',
  value,
  version,
  previous_value: value - 10,
  operation: 'increment',
  amount: 10,
  at: '2026-01-01T00:00:00.000Z',
});
const snapshot = (version, value = version * 10) => ({ type: 'snapshot', value, version });

function setup({ random = () => 0.5 } = {}) {
  const clock = createClock();
  const { FakeWebSocket, sockets } = fakeWebSocketClass();
  const messages = [];
  const statuses = [];
  const live = createLive({
    url: URL,
    WebSocket: FakeWebSocket,
    setTimeout: clock.setTimeout,
    clearTimeout: clock.clearTimeout,
    now: clock.now,
    random,
    onMessage: (m) => messages.push(m),
    onStatus: (s) => statuses.push(s),
    base: 1000,
    cap: 30_000,
    pingEvery: 25_000,
    pongWithin: 10_000,
  });
  const socket = () => sockets[sockets.length - 1];
  const status = () => statuses[statuses.length - 1];
  return { clock, live, sockets, socket, messages, statuses, status };
}

test('connects without since, passes the snapshot and updates on, and is live once open', () => {
  const { live, sockets, socket, messages, status } = setup();
  live.start(true);
  assert.equal(sockets.length, 1);
  assert.equal(socket().url, URL);
  assert.equal(status().state, 'connecting');
  socket().serverOpens();
  assert.equal(status().state, 'live');
  socket().serverSends(snapshot(5));
  socket().serverSends(update(6));
  socket().serverSends(update(7));
  assert.deepEqual(messages.map((m) => [m.type, m.version]), [['snapshot', 5], ['update', 6], ['update', 7]]);
});

test('after a drop it reconnects with since=<last version passed on>', async () => {
  const { clock, live, sockets, socket, status } = setup();
  live.start(true);
  socket().serverOpens();
  socket().serverSends(snapshot(5));
  socket().serverSends(update(6));
  socket().serverSends(update(7));
  socket().serverCloses();
  assert.equal(status().state, 'reconnecting');
  await clock.advance(30_000);
  assert.equal(sockets.length, 2);
  assert.equal(socket().url, `${URL}?since=7`);
});

test('replayed changes continue the sequence; duplicates are dropped', async () => {
  const { clock, live, socket, messages } = setup();
  live.start(true);
  socket().serverOpens();
  socket().serverSends(snapshot(5));
  socket().serverCloses();
  await clock.advance(30_000);
  socket().serverOpens();
  for (const v of [6, 7, 6, 7, 5, 8]) socket().serverSends(update(v));
  assert.deepEqual(messages.map((m) => m.version), [5, 6, 7, 8]);
});

test('a version gap is never passed on: it resyncs with since=<last version before the gap>', async () => {
  const { clock, live, sockets, socket, messages } = setup();
  live.start(true);
  socket().serverOpens();
  socket().serverSends(snapshot(5));
  socket().serverSends(update(6));
  const gapped = socket();
  gapped.serverSends(update(9));
  assert.deepEqual(messages.map((m) => m.version), [5, 6]);
  assert.equal(gapped.closed, true, 'the gapped socket is given up');
  // Late messages from the old socket are ignored.
  gapped.serverSends(update(7));
  assert.deepEqual(messages.map((m) => m.version), [5, 6]);
  await clock.advance(1000);
  assert.equal(sockets.length, 2);
  assert.equal(socket().url, `${URL}?since=6`);
  socket().serverOpens();
  for (const v of [7, 8, 9]) socket().serverSends(update(v));
  assert.deepEqual(messages.map((m) => m.version), [5, 6, 7, 8, 9]);
});

test('a snapshot restarts the numbering (too many missed, or a counter behind us)', async () => {
  const { clock, live, socket, messages } = setup();
  live.start(true);
  socket().serverOpens();
  socket().serverSends(snapshot(5));
  socket().serverCloses();
  await clock.advance(30_000);
  socket().serverOpens();
  socket().serverSends(snapshot(3000));
  socket().serverSends(update(3001));
  assert.deepEqual(messages.map((m) => m.version), [5, 3000, 3001]);
  socket().serverCloses();
  await clock.advance(30_000);
  assert.equal(socket().url, `${URL}?since=3001`);
});

test('reconnect delays back off with full jitter, and start over once data comes through', async () => {
  const { clock, live, socket, status } = setup({ random: () => 0.999 });
  live.start(true);
  const delays = [];
  for (let i = 0; i < 7; i++) {
    // Even a socket that opens and closes without a word counts as a failed attempt.
    if (i % 2) socket().serverOpens();
    socket().serverCloses();
    const s = status();
    assert.equal(s.state, 'reconnecting');
    delays.push(s.retryAt - clock.now());
    await clock.advance(s.retryAt - clock.now());
    assert.equal(status().state, 'connecting');
  }
  // floor(0.999 × min(30 s, 1 s · 2^k))
  assert.deepEqual(delays, [999, 1998, 3996, 7992, 15984, 29970, 29970]);
  socket().serverOpens();
  socket().serverSends('pong');
  socket().serverCloses();
  assert.equal(status().retryAt - clock.now(), 999, 'back to the first delay');
});

test('the delay is random within [0, base·2^attempt)', async () => {
  for (const r of [0, 0.25, 0.75]) {
    const { clock, live, socket, status } = setup({ random: () => r });
    live.start(true);
    socket().serverCloses();
    assert.equal(status().retryAt - clock.now(), Math.floor(r * 1000));
  }
});

test('keepalive: a ping on open and 25 s after each pong; no pong within 10 s means dead', async () => {
  const { clock, live, sockets, socket, status } = setup();
  live.start(true);
  socket().serverOpens();
  assert.deepEqual(socket().sent, ['ping'], 'the first ping proves the round trip');
  socket().serverSends('pong');
  await clock.advance(24_999);
  assert.deepEqual(socket().sent, ['ping']);
  await clock.advance(1);
  assert.deepEqual(socket().sent, ['ping', 'ping']);
  socket().serverSends('pong');
  await clock.advance(25_000);
  assert.deepEqual(socket().sent, ['ping', 'ping', 'ping'], 'pinging continues after each pong');
  const silent = socket();
  await clock.advance(9_999);
  assert.equal(status().state, 'live');
  await clock.advance(1);
  assert.equal(silent.closed, true);
  assert.equal(status().state, 'reconnecting');
  await clock.advance(30_000);
  assert.equal(sockets.length, 2);
});

test('an unasked pong does not start a second ping cycle', async () => {
  const { clock, live, socket } = setup();
  live.start(true);
  socket().serverOpens();
  socket().serverSends('pong');
  socket().serverSends('pong');
  await clock.advance(25_000);
  assert.deepEqual(socket().sent, ['ping', 'ping']);
  await clock.advance(9_000);
  assert.deepEqual(socket().sent, ['ping', 'ping'], 'one ping at a time');
});

test('offline closes the socket and stops retrying; online reconnects at once with since', async () => {
  const { clock, live, sockets, socket, status } = setup();
  live.start(true);
  socket().serverOpens();
  socket().serverSends(snapshot(8));
  const first = socket();
  live.setOnline(false);
  assert.equal(first.closed, true);
  assert.equal(status().state, 'offline');
  await clock.advance(600_000);
  assert.equal(sockets.length, 1, 'nothing tried while offline');
  assert.deepEqual(clock.due(), [], 'no timer left running');
  live.setOnline(true);
  assert.equal(sockets.length, 2);
  assert.equal(socket().url, `${URL}?since=8`);
  assert.equal(status().state, 'connecting');
});

test('starting offline reports offline and waits for online', () => {
  const { live, sockets, status } = setup();
  live.start(false);
  assert.equal(sockets.length, 0);
  assert.equal(status().state, 'offline');
  live.setOnline(true);
  assert.equal(sockets.length, 1);
});

test('a close while offline does not schedule a retry', async () => {
  const { clock, live, sockets, socket, status } = setup();
  live.start(true);
  const s = socket();
  live.setOnline(false);
  s.serverCloses();
  await clock.advance(60_000);
  assert.equal(sockets.length, 1);
  assert.equal(status().state, 'offline');
});

test('error messages and junk are ignored', () => {
  const { live, socket, messages } = setup();
  live.start(true);
  socket().serverOpens();
  socket().serverSends(snapshot(1));
  socket().serverSends('not json');
  socket().serverSends({ type: 'error', problem: { status: 400 } });
  socket().serverSends(update(2));
  assert.deepEqual(messages.map((m) => m.version), [1, 2]);
});
