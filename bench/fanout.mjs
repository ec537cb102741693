#!/usr/bin/env node
// WebSocket fan-out: does every change reach every open client, and how fast?
//
//   node bench/fanout.mjs --url http://127.0.0.1:<port> --clients 1000 [--changes 20]
//        [--interval 150] [--health /api/health] [--spread] [--sse]
//
// --sse opens Server-Sent Event streams (GET /api/events) instead of WebSockets: the same
// messages, as events, so the two deliveries can be set side by side.
// --spread gives every socket its own client address (CF-Connecting-IP, which the local runtime
// passes through), so that with relays on the sockets spread over a region's relays as real
// visitors would.
//
// Opens N sockets to /api/ws, spread over several child processes (a process may hold at most
// ~20,000 files, and one event loop parsing every message would become the bottleneck), waits for
// every socket's snapshot, then makes M changes (POST /api/increment, unique keys, ~150 ms apart)
// and records when each socket receives each `update`. Latency = receipt time - POST send time;
// every process reads performance.timeOrigin + performance.now(), which compare on one machine.
//
// It reports connect time, delivery latency p50/p99/max, the time until the LAST socket had each
// change, and messages missing, duplicated, out of order or unexpected (all must be 0; they are
// printed, never asserted: a benchmark reports). Every wait has a deadline; on a timeout the
// report says what was missing instead of hanging. The last line is `FANOUT_JSON {...}`.
import { fork } from 'node:child_process';
import http from 'node:http';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';

const now = () => performance.timeOrigin + performance.now(); // comparable across processes
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const MAX_PER_PROCESS = 2500; // well under the per-process file limit; spreads parsing over cores
// Handshakes in flight per process (FANOUT_HANDSHAKES). At 64 per process (256 at 10,000
// sockets) through relays on a loaded machine, 0.25-3% of the connections were reset by the
// local runtime before any reached the Worker (no log line; the kernel's listen queue never
// overflowed); at 16 every one connected, sooner. README, Benchmarks, has the runs.
const HANDSHAKES_IN_FLIGHT = Number(process.env.FANOUT_HANDSHAKES ?? 16);

if (process.argv[2] === 'client') client();
else await coordinator();

// ---------------------------------------------------------------------------------------------
// Coordinator: starts the clients, makes the changes, merges the results.
async function coordinator() {
  const { values: a } = parseArgs({
    options: {
      url: { type: 'string' },
      clients: { type: 'string', default: '1000' },
      changes: { type: 'string', default: '20' },
      interval: { type: 'string', default: '150' },
      health: { type: 'string' },
      spread: { type: 'boolean', default: false },
      sse: { type: 'boolean', default: false },
    },
  });
  if (!a.url) {
    console.error('usage: node bench/fanout.mjs --url http://127.0.0.1:<port> --clients N [--changes M] [--interval ms] [--health /api/health]');
    process.exit(2);
  }
  const N = Number(a.clients);
  const M = Number(a.changes);
  const interval = Number(a.interval);
  const wsUrl = a.sse ? `${a.url}/api/events` : a.url.replace(/^http/, 'ws') + '/api/ws';
  const procs = Math.max(2, Math.ceil(N / MAX_PER_PROCESS));
  // Deadlines scale with N: 10,000 handshakes through one object take a while on 2 cores.
  const openTimeoutMs = 30_000 + N * 10;
  const deliveryTimeoutMs = 15_000 + N * 2;

  const children = [];
  for (let i = 0; i < procs; i++) {
    const share = Math.floor(N / procs) + (i < N % procs ? 1 : 0);
    const child = fork(fileURLToPath(import.meta.url), ['client'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    children.push({ child, share });
  }
  const killAll = () => children.forEach(({ child }) => child.kill('SIGKILL'));
  process.on('exit', killAll);
  const ask = (cmd, timeoutMs) =>
    Promise.all(children.map(({ child, share }) => new Promise((resolve) => {
      const timer = setTimeout(() => resolve({ timedOut: true, share }), timeoutMs);
      child.once('message', (m) => { clearTimeout(timer); resolve(m); });
      child.send({ ...cmd, count: share });
    })));

  // 1. Connect every socket and wait for its snapshot.
  const t0 = now();
  const opened = await ask({ cmd: 'open', url: wsUrl, deadline: t0 + openTimeoutMs, spread: a.spread, sse: a.sse }, openTimeoutMs + 10_000);
  const connectMs = opened.flatMap((r) => r.connectMs ?? []).sort((x, y) => x - y);
  const ready = connectMs.length;
  const allReadyMs = Math.max(0, ...opened.map((r) => (r.lastSnapshotAt ?? t0) - t0));
  const baseVersions = new Set(opened.flatMap((r) => r.snapshotVersions ?? []));
  const openErrors = [...new Set(opened.flatMap((r) => r.errors ?? (r.timedOut ? ['a client process did not answer'] : [])))];
  // The counter's own sockets: every one of them is sent each change once (straight to the
  // counter: the browsers; with relays: the relays).
  let serverSockets = null;
  let serverRelays = null;
  if (a.health) {
    const h = await getJson(a.url + a.health).catch(() => ({}));
    serverSockets = h.sockets ?? null;
    serverRelays = h.relays ?? null;
  }
  console.log(`fan-out ${N}: ${ready}/${N} sockets ready in ${allReadyMs.toFixed(0)} ms over ${procs} processes` +
    (serverSockets !== null ? ` (server counts ${serverSockets}${serverRelays ? `, of them ${serverRelays} relays` : ''})` : '') + (openErrors.length ? `; errors: ${openErrors.slice(0, 3).join('; ')}` : ''));

  // 2. Make M changes, ~interval ms apart, remembering when each was sent.
  const sentAt = {};
  const postErrors = [];
  const run = Math.random().toString(36).slice(2, 10);
  for (let i = 0; i < M; i++) {
    const at = now();
    try {
      const body = await getJson(`${a.url}/api/increment`, { method: 'POST', headers: { 'Idempotency-Key': `fanout.${run}.${i}` } });
      sentAt[body.version] = at;
    } catch (e) {
      postErrors.push(String(e.message ?? e));
    }
    await sleep(Math.max(0, at + interval - now()));
  }

  // 3. Wait until every ready socket has every change (or the deadline), then merge.
  const collected = await ask({ cmd: 'collect', sentAt, deadline: now() + deliveryTimeoutMs }, deliveryTimeoutMs + 15_000);
  const sum = (k) => collected.reduce((s, r) => s + (r[k] ?? 0), 0);
  const latencies = collected.flatMap((r) => r.latencies ?? []).sort((x, y) => x - y);
  // Per change: when did the LAST socket get it? (max over all processes)
  const lastBy = {};
  for (const r of collected) for (const [v, ms] of Object.entries(r.lastByVersion ?? {})) lastBy[v] = Math.max(lastBy[v] ?? 0, ms);
  const lastAll = Object.values(lastBy).sort((x, y) => x - y);
  const unanswered = collected.filter((r) => r.timedOut).reduce((s, r) => s + r.share, 0);
  const result = {
    clients: N,
    processes: procs,
    transport: a.sse ? 'sse' : 'websocket',
    changes: M,
    changes_applied: Object.keys(sentAt).length,
    ready,
    server_sockets: serverSockets,
    server_relays: serverRelays,
    counter_sends_per_change: serverSockets,
    connect: { all_ready_ms: round(allReadyMs), p50_ms: round(pct(connectMs, 50)), p99_ms: round(pct(connectMs, 99)) },
    snapshot_versions: [...baseVersions],
    expected_messages: ready * Object.keys(sentAt).length,
    delivered: latencies.length,
    latency_ms: { p50: round(pct(latencies, 50)), p95: round(pct(latencies, 95)), p99: round(pct(latencies, 99)), max: round(latencies.at(-1) ?? null) },
    last_socket_ms: { p50: round(pct(lastAll, 50)), max: round(lastAll.at(-1) ?? null) },
    missing: sum('missing') + unanswered * Object.keys(sentAt).length,
    duplicated: sum('duplicated'),
    out_of_order: sum('outOfOrder'),
    unexpected: sum('unexpected'),
    closed_early: sum('closedEarly'),
    errors: [...openErrors, ...postErrors.slice(0, 3), ...(unanswered ? [`${unanswered} sockets' results never came back`] : [])],
  };
  console.log(`fan-out ${N}: ${result.delivered}/${result.expected_messages} delivered; latency p50 ${result.latency_ms.p50} ms, ` +
    `p99 ${result.latency_ms.p99} ms, max ${result.latency_ms.max} ms; last socket p50 ${result.last_socket_ms.p50} ms; ` +
    `missing ${result.missing}, duplicated ${result.duplicated}, out of order ${result.out_of_order}, unexpected ${result.unexpected}`);
  console.log(`FANOUT_JSON ${JSON.stringify(result)}`);
  // Only now, after the "delivered" line: closing the sockets is work for the server that must
  // not count as fan-out.
  children.forEach(({ child }) => child.send({ cmd: 'exit' }));
  await sleep(200);
  killAll();
  process.exit(0);
}

// ---------------------------------------------------------------------------------------------
// Client process: holds its share of sockets and records every message with its receipt time.
function client() {
  const sockets = []; // { ws, openedAt, snapshotAt, snapshotVersion, updates: [[version, at]], closed }
  const errors = new Set();
  let lastSnapshotAt = null;

  process.on('message', async (m) => {
    if (m.cmd === 'open') process.send(await open(m));
    else if (m.cmd === 'collect') process.send(await collect(m));
    else if (m.cmd === 'exit') {
      for (const s of sockets) s.ws.terminate();
      process.exit(0);
    }
  });
  process.on('disconnect', () => process.exit(0)); // the coordinator is gone: never linger

  async function open({ url, count, deadline, spread, sse }) {
    let next = 0;
    const base = (process.pid % 200) * 65536; // distinct addresses per client process
    const agent = new http.Agent({ keepAlive: false, maxSockets: Infinity });
    const one = () => new Promise((resolve) => {
      const s = { openedAt: now(), snapshotAt: null, snapshotVersion: null, updates: [], closed: false };
      const n = base + sockets.length;
      const headers = spread ? { 'CF-Connecting-IP': `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}` } : {};
      sockets.push(s);
      const onMessage = (text, at) => {
        let msg;
        try {
          msg = JSON.parse(text);
        } catch {
          errors.add('a message was not JSON');
          return;
        }
        if (msg.type === 'snapshot' && s.snapshotAt === null) {
          s.snapshotAt = at;
          s.snapshotVersion = msg.version;
          lastSnapshotAt = Math.max(lastSnapshotAt ?? 0, at);
          resolve();
        } else if (msg.type === 'update') {
          if (s.snapshotAt === null) errors.add('an update came before the snapshot');
          s.updates.push([msg.version, at]);
        }
      };
      if (sse) {
        // An event stream: events end with a blank line; `data:` lines carry the message.
        const req = http.get(url, { agent, headers: { ...headers, accept: 'text/event-stream' } }, (res) => {
          if (res.statusCode !== 200) {
            errors.add(`events answered ${res.statusCode}`);
            res.resume();
            resolve();
            return;
          }
          let buffer = '';
          res.setEncoding('utf8');
          res.on('data', (chunk) => {
            const at = now(); // first thing: the receipt time must not include our own parsing
            buffer += chunk;
            let end;
            while ((end = buffer.indexOf('\n\n')) >= 0) {
              const event = buffer.slice(0, end);
              buffer = buffer.slice(end + 2);
              const data = event.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trimStart()).join('\n');
              if (data) onMessage(data, at);
            }
          });
          res.on('close', () => { s.closed = true; resolve(); });
        });
        req.on('error', (e) => { errors.add(String(e.message ?? e)); resolve(); });
        s.ws = { terminate: () => req.destroy() };
        return;
      }
      s.ws = new WebSocket(url, { perMessageDeflate: false, headers, handshakeTimeout: Math.max(1000, deadline - now()) });
      s.ws.on('message', (data) => {
        const at = now(); // first thing: the receipt time must not include our own parsing
        onMessage(data.toString(), at);
      });
      s.ws.on('error', (e) => { errors.add(String(e.message ?? e)); resolve(); });
      s.ws.on('close', () => { s.closed = true; resolve(); });
    });
    // A fixed number of handshakes in flight; each lane opens its next socket when one is ready.
    const timeUp = sleep(Math.max(0, deadline - now()));
    const lane = async () => {
      while (next < count && now() < deadline) {
        next++;
        await Promise.race([one(), timeUp]);
      }
    };
    await Promise.all(Array.from({ length: HANDSHAKES_IN_FLIGHT }, lane));
    const ready = sockets.filter((s) => s.snapshotAt !== null && !s.closed);
    return {
      connectMs: ready.map((s) => s.snapshotAt - s.openedAt),
      snapshotVersions: [...new Set(ready.map((s) => s.snapshotVersion))],
      lastSnapshotAt,
      errors: [...errors].slice(0, 5).concat(sockets.length < count ? [`only ${sockets.length}/${count} sockets attempted before the deadline`] : []),
    };
  }

  async function collect({ sentAt, deadline }) {
    const versions = Object.keys(sentAt).map(Number);
    const ready = sockets.filter((s) => s.snapshotAt !== null);
    const want = ready.length * versions.length;
    const have = () => ready.reduce((n, s) => n + s.updates.length, 0);
    while (have() < want && now() < deadline) await sleep(20);

    const latencies = [];
    const lastByVersion = {};
    let missing = 0, duplicated = 0, outOfOrder = 0, unexpected = 0, closedEarly = 0;
    for (const s of ready) {
      if (s.closed) closedEarly++;
      const seen = new Set();
      let prev = -Infinity;
      for (const [v, at] of s.updates) {
        if (v < prev) outOfOrder++;
        prev = Math.max(prev, v);
        if (seen.has(v)) { duplicated++; continue; }
        seen.add(v);
        if (sentAt[v] === undefined) { unexpected++; continue; }
        const ms = at - sentAt[v];
        latencies.push(Math.round(ms * 100) / 100);
        lastByVersion[v] = Math.max(lastByVersion[v] ?? 0, ms);
      }
      for (const v of versions) if (!seen.has(v)) missing++;
    }
    return { latencies, lastByVersion, missing, duplicated, outOfOrder, unexpected, closedEarly };
  }
}

// ---------------------------------------------------------------------------------------------
async function getJson(url, init = {}) {
  const res = await fetch(url, { ...init, signal: AbortSignal.timeout(10_000) });
  const text = await res.text();
  if (!res.ok) throw new Error(`${init.method ?? 'GET'} ${url} answered ${res.status}: ${text.slice(0, 200)}`);
  return JSON.parse(text);
}

function pct(sorted, p) {
  if (!sorted.length) return null;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

function round(x) {
  return x === null || x === undefined ? null : Math.round(x * 10) / 10;
}
