#!/usr/bin/env node
// How often the runtime's event loop looks for wake-ups under load (not part of `make bench`).
// workerd's loop looks at its sockets, timers and the wake-ups that one request's promise sends
// another (all through epoll) only when it has nothing else to run; a stretch without a look
// is a stretch in which none of those is delivered. For each target, a fresh server per run,
// keyed POSTs (or GETs) for `duration` s from bench/even.mjs (or wrk), and meanwhile `perf
// record` of workerd's epoll calls for `window` s in the middle; prints the run's req/s, p99 and
// p99.9, the spread of requests per connection, and the looks: how many, the longest stretches
// without one, and the share of the window spent in stretches longer than 50 ms.
//
//   node bench/polls.mjs [--connections 16] [--duration 10] [--window 4] [--rounds 2]
//        [--mode post|get] [--client even|wrk] <target>...
//
// A target is a bench target (`js-counter`, `ours-nolog`, …) or a folder holding
// scripts/build.sh's output (`build`: this checkout's build/), without log lines, optionally
// followed by vars for it: `build,BATCH_MAX_IN_FLIGHT=off`. Needs `perf` with the syscalls
// tracepoints (root, or perf_event_paranoid at -1).
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { even } from './even.mjs';
import { wrk } from './wrk.mjs';
import { TMP, groupPids, sleep, start, stop, targetOf } from './server.mjs';

const { values: opt, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    connections: { type: 'string', default: '16' },
    duration: { type: 'string', default: '10' },
    window: { type: 'string', default: '4' },
    rounds: { type: 'string', default: '2' },
    mode: { type: 'string', default: 'post' },
    client: { type: 'string', default: 'even' },
  },
});
const conns = Number(opt.connections);
const secs = Number(opt.duration);
const window = Number(opt.window);
const post = opt.mode === 'post';
if (!(window < secs)) throw new Error('--window must be shorter than --duration');
const targets = (positionals.length ? positionals : ['js-counter', 'build']).map((p, i) => targetOf(p, i, 'ours-nolog'));
const EVENTS = ['epoll_wait', 'epoll_pwait', 'epoll_pwait2'].flatMap((e) => ['-e', `syscalls:sys_enter_${e}`]);

/** `perf record` of `pid`'s epoll calls for `window` s, starting `delay` ms from now. */
async function record(pid, delay, file) {
  await sleep(delay);
  const p = spawn('perf', ['record', '-q', '-o', file, ...EVENTS, '-p', String(pid), '--', 'sleep', String(window)], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  p.stderr.on('data', (d) => (err += d));
  const code = await new Promise((r) => p.on('exit', r));
  if (code !== 0) throw new Error(`perf record failed (${code}): ${err.trim()}`);
}

/** The epoll calls' times (ms) on the thread that made the most of them. */
function looks(file) {
  const byThread = new Map();
  for (const line of execFileSync('perf', ['script', '-i', file, '-F', 'tid,time'], { encoding: 'utf8', maxBuffer: 1 << 28 }).split('\n')) {
    const m = /^\s*(\d+)\s+([\d.]+):/.exec(line);
    if (!m) continue;
    if (!byThread.has(m[1])) byThread.set(m[1], []);
    byThread.get(m[1]).push(Number(m[2]) * 1000);
  }
  return [...byThread.values()].sort((a, b) => b.length - a.length)[0] ?? [];
}

console.log(`${opt.mode} at ${conns} connections from ${opt.client}, ${secs} s per run, epoll calls over ${window} s in the middle, ${opt.rounds} rounds`);
console.log('| round | target | req/s | p99 ms | p99.9 ms | requests per connection | looks | longest stretches without one, ms | time in stretches > 50 ms |');
console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- |');
for (let r = 1; r <= Number(opt.rounds); r++) {
  for (const t of targets) {
    const s = await start(t.key);
    try {
      await fetch(s.url + '/api/value'); // the object is up
      const workerd = groupPids(s.pgid).find((p) => p.comm === 'workerd');
      if (!workerd) throw new Error('no workerd process in the server\'s group');
      const file = path.join(TMP, `polls-${s.port}.data`);
      const load = opt.client === 'wrk' ? wrk(s.url, { connections: conns, seconds: secs, post }) : even(s.url, { connections: conns, seconds: secs, post });
      const [m] = await Promise.all([load, record(workerd.pid, ((secs - window) / 2) * 1000, file)]);
      const ts = looks(file);
      fs.rmSync(file, { force: true });
      const gaps = ts.slice(1).map((x, i) => x - ts[i]).sort((a, b) => b - a);
      const long = gaps.filter((g) => g > 50).reduce((a, b) => a + b, 0);
      const spread = m.per_connection ? `${m.per_connection.fewest}–${m.per_connection.most}` : '–';
      const f = (x) => (x === undefined || x === null ? '–' : x.toFixed(1));
      console.log(`| ${r} | ${t.name} | ${m.rps.toFixed(0)} | ${f(m.latency_ms.p99)} | ${f(m.latency_ms.p999)} | ${spread} | ${ts.length} | ${gaps.slice(0, 3).map((g) => g.toFixed(0)).join(', ') || '–'} | ${((long / (window * 1000)) * 100).toFixed(0)}% |`);
    } finally {
      await stop(s);
    }
  }
}
