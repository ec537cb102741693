#!/usr/bin/env node
// Latency at a steady request rate, the way users meet the service (not at saturation, which is
// what wrk measures): requests are sent on a fixed schedule whether or not earlier ones have
// answered (an open loop), and each latency is counted from the moment its request was DUE, so a
// stall delays everything scheduled behind it instead of hiding it (no coordinated omission).
//
//   node bench/paced.mjs --url http://127.0.0.1:<port> --mode get|post --rate <req/s>
//        [--duration 10] [--warmup 1] [--clients N]
//
// --clients N sends request i as client 10.99.x.y number i mod N (CF-Connecting-IP), so N polite
// clients share the rate (each under a per-client limit), as distinct from a flooder.
// "get" reads GET /api/value; "post" sends POST /api/increment with an empty body and a unique
// Idempotency-Key per request. Requests that fail, time out (5 s) or answer non-2xx are errors.
// The last line is `PACED_JSON {...}`: sent, ok, errors, the achieved rate and p50/p95/p99/max.
import http from 'node:http';
import { parseArgs } from 'node:util';

const { values: a } = parseArgs({
  options: {
    url: { type: 'string' },
    mode: { type: 'string', default: 'get' },
    rate: { type: 'string' },
    duration: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '1' },
    clients: { type: 'string', default: '0' },
  },
});
const rate = Number(a.rate);
const duration = Number(a.duration);
const warmup = Number(a.warmup);
const clients = Number(a.clients);
if (!a.url || !['get', 'post'].includes(a.mode) || !(rate > 0) || !(duration > 0) || !(warmup >= 0)) {
  console.error('usage: node bench/paced.mjs --url http://127.0.0.1:<port> --mode get|post --rate <req/s> [--duration s] [--warmup s]');
  process.exit(2);
}

const { hostname, port } = new URL(a.url);
const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
const run = Math.random().toString(36).slice(2, 10);
const now = () => performance.now();

/** One request; resolves with its latency from `due` in ms, or null when it failed. */
function send(i, due) {
  return new Promise((resolve) => {
    const post = a.mode === 'post';
    const req = http.request({
      agent, host: hostname, port, method: post ? 'POST' : 'GET', path: post ? '/api/increment' : '/api/value',
      headers: {
        ...(post ? { 'idempotency-key': `paced.${run}.${i}`, 'content-length': '0' } : {}),
        ...(clients > 0 ? { 'cf-connecting-ip': `10.99.${Math.floor((i % clients) / 256)}.${(i % clients) % 256}` } : {}),
      },
      timeout: 5000,
    }, (res) => {
      res.resume(); // the body is read (and dropped): the latency covers the whole answer
      res.on('end', () => resolve(res.statusCode >= 200 && res.statusCode < 300 ? now() - due : null));
      res.on('error', () => resolve(null));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve(null));
    req.end();
  });
}

const interval = 1000 / rate;
const total = Math.round((warmup + duration) * rate);
const firstMeasured = Math.round(warmup * rate);
const latencies = [];
let errors = 0;
const pending = [];
const t0 = now() + 50;
let next = 0;
await new Promise((resolve) => {
  const tick = () => {
    const t = now();
    while (next < total && t0 + next * interval <= t) {
      const i = next++;
      const p = send(i, t0 + i * interval).then((ms) => {
        if (i < firstMeasured) return;
        if (ms === null) errors++;
        else latencies.push(ms);
      });
      pending.push(p);
    }
    if (next >= total) resolve();
    else setTimeout(tick, Math.max(0, Math.min(interval, t0 + next * interval - now())));
  };
  tick();
});
const sendingEnded = now();
await Promise.all(pending);
agent.destroy();

latencies.sort((x, y) => x - y);
const pct = (p) => (latencies.length ? latencies[Math.min(latencies.length - 1, Math.ceil((p / 100) * latencies.length) - 1)] : null);
const r2 = (x) => (x === null ? null : Math.round(x * 100) / 100);
const measured = total - firstMeasured;
const result = {
  mode: a.mode,
  rate,
  duration_s: duration,
  sent: measured,
  ok: latencies.length,
  errors,
  achieved_rps: r2(measured / ((sendingEnded - (t0 + firstMeasured * interval)) / 1000)),
  latency_ms: { p50: r2(pct(50)), p95: r2(pct(95)), p99: r2(pct(99)), max: r2(latencies.at(-1) ?? null) },
};
console.log(`paced ${a.mode} at ${rate} req/s for ${duration} s: ${result.ok}/${measured} ok, ${errors} errors; ` +
  `p50 ${result.latency_ms.p50} ms, p95 ${result.latency_ms.p95} ms, p99 ${result.latency_ms.p99} ms, max ${result.latency_ms.max} ms`);
console.log(`PACED_JSON ${JSON.stringify(result)}`);
