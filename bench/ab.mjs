#!/usr/bin/env node
// Quick A/B comparison of Worker builds (not part of `make bench`): for each build folder
// given, start it under the benchmark launcher, run short interleaved wrk GET and keyed POST
// runs, and print req/s and server CPU per request. Use it to check one change at a time:
//
//   node bench/ab.mjs --rounds 3 --duration 5 js-counter /tmp/a/build /tmp/b/build
//   node bench/ab.mjs --connections 16,64 --modes get,miss noop floor build
//
// Modes: `get` (GET /api/value), `post` (keyed POST /api/increment), `miss` (GET /api/nothing:
// answered by the Worker alone, 404 for ours, so it is what the edge costs without the object).
// `build` is this checkout's build/ as it is.
//
// A target is a bench target (`noop`, `floor`, `floor-rpc`, `floor-batched`, `js-counter`) or a
// folder holding scripts/build.sh's output (entry.js, or edge/ and objects/ for a build from
// when the Worker was two scripts), optionally followed by vars for it:
// `/tmp/b/build,REQUEST_LOG_SAMPLE_RATE=0`.
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { ROOT, targetOf, start, stop, cpuSeconds } from './server.mjs';

const { values: opt, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    rounds: { type: 'string', default: '3' },
    duration: { type: 'string', default: '5' },
    connections: { type: 'string', default: '16' },
    modes: { type: 'string', default: 'get,post' },
  },
});
const connections = opt.connections.split(',').map(Number);
const modes = opt.modes.split(',');
const runs = connections.flatMap((c) => modes.map((m) => `${m}@${c}`));
const targets = positionals.map((p, i) => targetOf(p, i));
const results = new Map(targets.map((t) => [t.name, Object.fromEntries(runs.map((r) => [r, []]))]));

const PATHS = { get: 'value', post: 'increment', miss: 'nothing' };
function wrk(url, mode, c = 16) {
  const out = execFileSync('wrk', [`-t${Math.min(2, c)}`, `-c${c}`, `-d${opt.duration}s`, '--latency', '-s', path.join(ROOT, 'bench/wrk.lua'),
    `${url}/api/${PATHS[mode]}`, '--', mode === 'post' ? 'post' : 'get', `ab${Date.now()}`], { encoding: 'utf8' });
  return JSON.parse(/BENCH_JSON (.*)/.exec(out)[1]);
}

for (let r = 0; r < Number(opt.rounds); r++) {
  for (const t of targets) {
    const s = await start(t.key);
    try {
      wrk(s.url, 'get'); // warm-up
      for (const run of runs) {
        const [mode, c] = run.split('@');
        const c0 = cpuSeconds(s);
        const w = wrk(s.url, mode, Number(c));
        const c1 = cpuSeconds(s);
        // A miss is a 404 for ours (and a 200 for the no-op): every answer counts.
        const rps = (mode === 'miss' ? w.requests : w.ok) / (w.duration_us / 1e6);
        results.get(t.name)[run].push({
          rps,
          cpu_us: ((c1.total - c0.total) * 1e6) / w.requests,
          workerd_us: ((c1.workerd - c0.workerd) * 1e6) / w.requests,
          p99_ms: w.latency_us.p99 / 1000,
        });
      }
    } finally {
      await stop(s);
    }
  }
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
if (process.env.AB_ROUNDS_JSON) console.log(`AB_JSON ${JSON.stringify(Object.fromEntries(results))}`);
console.log('target'.padEnd(34), runs.map((r) => `${r.padStart(9)} req/s  cpu µs  wd µs  p99`).join(' | '));
for (const [name, r] of results) {
  const f = (m) => [median(r[m].map((x) => x.rps)).toFixed(0).padStart(15), median(r[m].map((x) => x.cpu_us)).toFixed(0).padStart(7),
    median(r[m].map((x) => x.workerd_us)).toFixed(0).padStart(6), median(r[m].map((x) => x.p99_ms)).toFixed(0).padStart(4)].join(' ');
  console.log(name.slice(-34).padEnd(34), runs.map(f).join(' | '));
}
