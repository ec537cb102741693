#!/usr/bin/env node
// Quick A/B comparison of Worker builds (not part of `make bench`): for each build folder
// given, start it under the benchmark launcher, run short interleaved wrk GET and keyed POST
// runs, and print req/s and server CPU per request. Use it to check one change at a time:
//
//   node bench/ab.mjs --rounds 3 --duration 5 js-counter /tmp/a/build /tmp/b/build
//
// A target is `noop`, `js-counter` or a folder holding scripts/build.sh's output (edge/, objects/),
// optionally followed by vars for it: `/tmp/b/build,REQUEST_LOG_SAMPLE_RATE=0`.
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { ROOT, TARGETS, start, stop, cpuSeconds } from './server.mjs';

const { values: opt, positionals } = parseArgs({
  allowPositionals: true,
  options: { rounds: { type: 'string', default: '3' }, duration: { type: 'string', default: '5' } },
});
const targets = positionals.map((p, i) => {
  if (TARGETS[p]) return { name: p, key: p };
  const [dir, ...vars] = p.split(',');
  const key = `build${i}`;
  TARGETS[key] = {
    ...TARGETS.ours,
    script: path.resolve(dir, 'edge/index.js'),
    objects: path.resolve(dir, 'objects/index.js'),
    args: [...TARGETS.ours.args, ...vars.flatMap((v) => ['--var', v])],
  };
  return { name: p, key };
});
const results = new Map(targets.map((t) => [t.name, { get: [], post: [] }]));

function wrk(url, mode) {
  const out = execFileSync('wrk', ['-t2', '-c16', `-d${opt.duration}s`, '--latency', '-s', path.join(ROOT, 'bench/wrk.lua'),
    `${url}/api/${mode === 'get' ? 'value' : 'increment'}`, '--', mode, `ab${Date.now()}`], { encoding: 'utf8' });
  return JSON.parse(/BENCH_JSON (.*)/.exec(out)[1]);
}

for (let r = 0; r < Number(opt.rounds); r++) {
  for (const t of targets) {
    const s = await start(t.key);
    try {
      wrk(s.url, 'get'); // warm-up
      for (const mode of ['get', 'post']) {
        const c0 = cpuSeconds(s);
        const w = wrk(s.url, mode);
        const c1 = cpuSeconds(s);
        const rps = w.ok / (w.duration_us / 1e6);
        results.get(t.name)[mode].push({
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
console.log('target'.padEnd(34), 'GET req/s  cpu µs  wd µs  p99 |  POST req/s  cpu µs  wd µs  p99');
for (const [name, r] of results) {
  const f = (m) => [median(r[m].map((x) => x.rps)).toFixed(0).padStart(9), median(r[m].map((x) => x.cpu_us)).toFixed(0).padStart(7),
    median(r[m].map((x) => x.workerd_us)).toFixed(0).padStart(6), median(r[m].map((x) => x.p99_ms)).toFixed(0).padStart(4)].join(' ');
  console.log(name.slice(-34).padEnd(34), f('get'), '|', f('post'));
}
