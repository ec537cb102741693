#!/usr/bin/env node
// Where the tail of a saturated run is spent (not part of `make bench`): each target runs under
// the benchmark launcher with `--timed`, whose front Worker notes how long every request took
// from the moment the runtime handed it to the Worker to the moment its response was ready. wrk
// measures the same requests from the client. The difference is time spent in the runtime
// before and after any Worker code: accepting, reading and queueing the request, writing the
// response. Rounds are interleaved, a fresh server per target per round.
//
//   node bench/tails.mjs [--rounds 3] [--duration 5] [--connections 64] [--mode post|get]
//        <target> [<target> ...]        (bench targets: floor, floor-batched, js-counter, ours-nolog, …)
//
// Prints, per round and target, p50 / p90 / p99 ms seen by wrk and inside the Worker, then the
// medians over the rounds.
import { execFileSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import path from 'node:path';
import { ROOT, TARGETS, start, stop, sleep } from './server.mjs';

const { values: opt, positionals: targets } = parseArgs({
  allowPositionals: true,
  options: {
    rounds: { type: 'string', default: '3' },
    duration: { type: 'string', default: '5' },
    connections: { type: 'string', default: '64' },
    mode: { type: 'string', default: 'post' },
  },
});
if (!targets.length || targets.some((t) => !TARGETS[t])) {
  console.error(`usage: node bench/tails.mjs [--rounds N] [--duration S] [--connections C] [--mode post|get] <${Object.keys(TARGETS).join('|')}>...`);
  process.exit(2);
}
if (!['get', 'post'].includes(opt.mode)) throw new Error(`unknown mode ${opt.mode}`);
const urlPath = opt.mode === 'post' ? '/api/increment' : '/api/value';

const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fmt = (xs) => xs.map((x) => x.toFixed(1)).join(' / ');

const results = Object.fromEntries(targets.map((t) => [t, []]));
for (let round = 1; round <= Number(opt.rounds); round++) {
  for (const target of targets) {
    const server = await start(target, { args: ['--timed'] });
    try {
      const threads = Math.min(2, Number(opt.connections));
      const wrk = (secs, run) =>
        execFileSync('wrk', [`-t${threads}`, `-c${opt.connections}`, `-d${secs}s`, '--latency', '--timeout', '5s',
          '-s', path.join(ROOT, 'bench/wrk.lua'), server.url + urlPath, '--', opt.mode, run], { encoding: 'utf8', timeout: (Number(secs) + 30) * 1000 });
      wrk(1, `tails.warm.${Date.now()}`);
      await sleep(500);
      await fetch(`${server.url}/__handler_ms`, { headers: { connection: 'close' } }).then((r) => r.arrayBuffer());
      const out = wrk(opt.duration, `tails.${Date.now()}`);
      const line = out.split('\n').find((l) => l.startsWith('BENCH_JSON '));
      if (!line) throw new Error(`wrk printed no BENCH_JSON line:\n${out}`);
      const w = JSON.parse(line.slice('BENCH_JSON '.length));
      await sleep(1000); // requests wrk abandoned at its deadline finish
      const inside = (await (await fetch(`${server.url}/__handler_ms`, { headers: { connection: 'close' } })).json()).sort((a, b) => a - b);
      if (!inside.length) throw new Error(`${target}: the front Worker noted no request`);
      const r = {
        rps: (w.requests / w.duration_us) * 1e6,
        client: [w.latency_us.p50, w.latency_us.p90, w.latency_us.p99].map((us) => us / 1000),
        inside: [0.5, 0.9, 0.99].map((p) => pct(inside, p)),
      };
      results[target].push(r);
      console.log(`round ${round} ${target.padEnd(14)} ${opt.mode}@${opt.connections} ${r.rps.toFixed(0).padStart(5)} req/s  p50 / p90 / p99 ms: wrk ${fmt(r.client)}, inside the Worker ${fmt(r.inside)}`);
    } finally {
      await stop(server);
    }
  }
}
console.log(`\nmedians of ${opt.rounds} round(s), ${opt.mode} at ${opt.connections} connections, ${opt.duration} s each:`);
console.log('| target | req/s | wrk p50 / p90 / p99 ms | inside the Worker p50 / p90 / p99 ms |');
console.log('| --- | --- | --- | --- |');
for (const t of targets) {
  const rs = results[t];
  const m = (k, i) => median(rs.map((r) => r[k][i]));
  console.log(`| ${t} | ${median(rs.map((r) => r.rps)).toFixed(0)} | ${fmt([0, 1, 2].map((i) => m('client', i)))} | ${fmt([0, 1, 2].map((i) => m('inside', i)))} |`);
}
process.exit(0);
