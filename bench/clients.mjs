#!/usr/bin/env node
// The tail at saturation as different load clients see it (not part of `make bench`): for each
// target, a fresh server per run, keyed POSTs (or GETs) from `connections` closed-loop
// connections for `duration` s, sent by
//   wrk-t2  wrk with 2 threads, as `make bench` and bench/ab.mjs run it;
//   wrk-t1  wrk with 1 thread;
//   even    bench/even.mjs: one Node.js keep-alive connection per loop, each sending its next
//           request when its last is answered, so every connection is served by the client
//           alike (its own CPU is about one core, as wrk-t1's).
// Prints req/s, p50, p99 and p99.9, the mean latency that Little's law gives for a closed loop
// (connections / req/s), and for `even` the fewest and most requests one connection completed.
// A p50 far below that mean says some connections waited much longer than the rest.
//
//   node bench/clients.mjs [--connections 64] [--duration 8] [--rounds 3] [--mode post|get]
//        [--clients wrk-t2,wrk-t1,even] <target>...
//
// A target is a bench target (`js-counter`, `ours-nolog`, …) or a folder holding
// scripts/build.sh's output (`build`: this checkout's build/), without log lines, optionally
// followed by vars for it: `build,BATCH_CHANGES_FROM=0`.
import { parseArgs } from 'node:util';
import { even } from './even.mjs';
import { wrk } from './wrk.mjs';
import { targetOf, start, stop } from './server.mjs';

const { values: opt, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    connections: { type: 'string', default: '64' },
    duration: { type: 'string', default: '8' },
    rounds: { type: 'string', default: '3' },
    mode: { type: 'string', default: 'post' },
    clients: { type: 'string', default: 'wrk-t2,wrk-t1,even' },
  },
});
const conns = Number(opt.connections);
const secs = Number(opt.duration);
const post = opt.mode === 'post';
const targets = (positionals.length ? positionals : ['js-counter', 'build']).map((p, i) => targetOf(p, i, 'ours-nolog'));

console.log(`${opt.mode} at ${conns} connections, ${secs} s per run, ${opt.rounds} rounds`);
console.log('| round | client | target | req/s | p50 ms | p99 ms | p99.9 ms | Little\'s-law mean ms | requests per connection |');
console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- |');
for (let r = 1; r <= Number(opt.rounds); r++) {
  for (const client of opt.clients.split(',')) {
    for (const t of targets) {
      const s = await start(t.key);
      try {
        await fetch(s.url + '/api/value'); // the object is up
        const m = client === 'even' ? await even(s.url, { connections: conns, seconds: secs, post }) : await wrk(s.url, { threads: client === 'wrk-t1' ? 1 : 2, connections: conns, seconds: secs, post });
        const f = (x) => (x === undefined || x === null ? '–' : x.toFixed(1));
        const spread = m.per_connection ? `${m.per_connection.fewest}–${m.per_connection.most}` : '–';
        const l = m.latency_ms;
        console.log(`| ${r} | ${client} | ${t.name} | ${m.rps.toFixed(0)} | ${f(l.p50)} | ${f(l.p99)} | ${f(l.p999)} | ${f((conns / m.rps) * 1000)} | ${spread} |`);
      } finally {
        await stop(s);
      }
    }
  }
}
