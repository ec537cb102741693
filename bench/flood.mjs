#!/usr/bin/env node
// A one-client flood against our Worker (part of `make bench`, or alone: `node bench/flood.mjs`):
// what it costs the one counter, and what it does to everyone else's latency.
//
// One server (ours, as deployed: RATE_LIMIT_PER_10S=20, batching on, no log lines), then:
//  1. quiet: polite clients send keyed changes at a steady rate (bench/paced.mjs, 100 client
//     addresses sharing the rate, each far under the limit): their latency alone;
//  2. flood: the same polite load while one address floods keyed changes with wrk at 64
//     connections, every request a new key.
// The counter's own metrics (GET /api/metrics) before and after each phase say how many of the
// flood's requests reached it: its refusals (acidizer_rate_limited_total{limit="changes"}) and
// its commits. Writes bench/results/flood.json; bench/report.mjs puts it in BENCHMARKS.md.
//
//   node bench/flood.mjs [--seconds 10] [--rate 50] [--connections 64]
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { ROOT, start, stop } from './server.mjs';

const { values: a } = parseArgs({
  options: {
    seconds: { type: 'string', default: '10' },
    rate: { type: 'string', default: '50' },
    connections: { type: 'string', default: '64' },
  },
});
const SECONDS = Number(a.seconds);
const RATE = Number(a.rate);
const CONNECTIONS = Number(a.connections);
const ADMIN = 'bench-flood-admin';
const LIMIT = 20;

/** The counter's counters, from its Prometheus text. */
async function counters(url) {
  const res = await fetch(`${url}/api/metrics`, { headers: { authorization: `Bearer ${ADMIN}` } });
  const text = await res.text();
  if (!res.ok) throw new Error(`/api/metrics answered ${res.status}: ${text.slice(0, 200)}`);
  const num = (name) => Number(new RegExp(`^${name.replace(/[{}"]/g, (c) => `\\${c}`)} (\\d+)`, 'm').exec(text)?.[1] ?? NaN);
  return { refused: num('acidizer_rate_limited_total{limit="changes"}'), commits: num('acidizer_commits_total') };
}

/** bench/paced.mjs as a child: resolves with its PACED_JSON. */
function paced(url) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(ROOT, 'bench/paced.mjs'), '--url', url, '--mode', 'post',
      '--rate', String(RATE), '--duration', String(SECONDS), '--clients', '100'], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.on('exit', (code) => {
      const line = out.split('\n').find((l) => l.startsWith('PACED_JSON '));
      if (code !== 0 || !line) reject(new Error(`paced.mjs failed (${code}):\n${out}`));
      else resolve(JSON.parse(line.slice('PACED_JSON '.length)));
    });
  });
}

/** wrk flooding keyed changes from one address (no CF-Connecting-IP: every request the same client). */
function flood(url) {
  return new Promise((resolve, reject) => {
    const child = spawn('wrk', [`-t2`, `-c${CONNECTIONS}`, `-d${SECONDS + 2}s`, '--latency', '-s', path.join(ROOT, 'bench/wrk.lua'),
      `${url}/api/increment`, '--', 'post', `flood${Date.now()}`], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.on('exit', (code) => {
      const line = out.split('\n').find((l) => l.startsWith('BENCH_JSON '));
      if (code !== 0 || !line) reject(new Error(`wrk failed (${code}):\n${out}`));
      else resolve(JSON.parse(line.slice('BENCH_JSON '.length)));
    });
  });
}

/** The quiet and flooded phases against one target; the counter's counts for ours. */
async function scenario(target, args) {
  const server = await start(target, { args });
  try {
    await paced(server.url).catch(() => {}); // warm the object and the paths
    const ours = target !== 'noop';
    const c1 = ours ? await counters(server.url) : null;
    const quiet = await paced(server.url);
    const c2 = ours ? await counters(server.url) : null;
    const [busy, wrk] = await Promise.all([paced(server.url), flood(server.url)]);
    await new Promise((r) => setTimeout(r, 1000));
    const c3 = ours ? await counters(server.url) : null;
    // What of the flood reached the counter: its refusals there, and its applied changes.
    const reached = ours ? c3.refused - c2.refused + wrk.ok : null;
    return {
      target,
      quiet: quiet.latency_ms, quiet_errors: quiet.errors,
      under_flood: busy.latency_ms, under_flood_errors: busy.errors,
      flood_requests: wrk.requests, flood_rps: Math.round(wrk.requests / (wrk.duration_us / 1e6)),
      flood_applied: ours ? wrk.ok : null, flood_refused: ours ? wrk.non2xx : null,
      counter_refusals: ours ? c3.refused - c2.refused : null,
      quiet_counter_refusals: ours ? c2.refused - c1.refused : null,
      flood_calls_reaching_counter: reached,
      share_reaching_counter: ours && wrk.requests ? reached / wrk.requests : null,
      p50_ratio: busy.latency_ms.p50 / quiet.latency_ms.p50,
      p99_ratio: busy.latency_ms.p99 / quiet.latency_ms.p99,
    };
  } finally {
    await stop(server);
  }
}

// The no-op Worker under the same flood is the floor: every Worker on one local runtime thread
// queues the polite requests behind the flood's, whatever it does with them.
const result = {
  seconds: SECONDS, polite_rate: RATE, polite_clients: 100, flood_connections: CONNECTIONS, limit_per_10s: LIMIT,
  runs: [
    await scenario('noop', []),
    await scenario('ours-nolog', ['--var', `RATE_LIMIT_PER_10S=${LIMIT}`, '--var', `ADMIN_TOKEN=${ADMIN}`]),
  ],
  command: `node bench/flood.mjs --seconds ${SECONDS} --rate ${RATE} --connections ${CONNECTIONS}`,
  commit: (() => { try { return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim(); } catch { return null; } })(),
};
fs.mkdirSync(path.join(ROOT, 'bench/results'), { recursive: true });
fs.writeFileSync(path.join(ROOT, 'bench/results/flood.json'), JSON.stringify(result, null, 1) + '\n');
for (const r of result.runs) {
  console.log(`flood ${r.target}: ${r.flood_requests} requests (${r.flood_rps}/s) from one client` +
    (r.flood_calls_reaching_counter === null ? '' : `, ${r.flood_applied} applied; ${r.flood_calls_reaching_counter} reached the counter (${(100 * r.share_reaching_counter).toFixed(2)}%)`) +
    `; polite p50 ${r.quiet.p50} → ${r.under_flood.p50} ms, p99 ${r.quiet.p99} → ${r.under_flood.p99} ms`);
}
console.log(`FLOOD_JSON ${JSON.stringify(result)}`);
