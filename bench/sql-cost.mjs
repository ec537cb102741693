#!/usr/bin/env node
// What a change's SQL statements cost the object by themselves (not part of `make bench`): runs
// bench/peers/sql-cost under the benchmark launcher and, per mode and group size, times N
// changes applied in one request to a fresh object (the request's wall time from here, which
// the synchronous loop inside the object fills). Medians of the rounds, µs per change.
//
//   node bench/sql-cost.mjs [--changes 20000] [--groups 1,8] [--rounds 3]
import { parseArgs } from 'node:util';
import { TARGETS, start, stop } from './server.mjs';

const { values: opt } = parseArgs({
  options: {
    changes: { type: 'string', default: '20000' },
    groups: { type: 'string', default: '1,8' },
    rounds: { type: 'string', default: '3' },
  },
});
TARGETS['sql-cost'] = { script: 'bench/peers/sql-cost/worker.js', args: ['--do', 'Counter', '--binding', 'COUNTER'] };
const MODES = ['none', 'ours', 'ours-decoded', 'slim-key', 'trigger'];
const n = Number(opt.changes);
const groups = opt.groups.split(',').map(Number);
const server = await start('sql-cost');
const times = {};
try {
  for (let r = 0; r < Number(opt.rounds); r++) {
    for (const group of groups) {
      for (const mode of MODES) {
        const t0 = performance.now();
        const res = await fetch(`${server.url}/?mode=${mode}&n=${n}&group=${group}`);
        if (!res.ok) throw new Error(`${mode}: ${res.status} ${await res.text()}`);
        await res.json();
        (times[`${mode}@${group}`] ??= []).push(((performance.now() - t0) * 1000) / n);
      }
    }
  }
} finally {
  await stop(server);
}
const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
console.log(`${n} changes per request, ${opt.rounds} rounds, µs per change (median):`);
console.log(`| changes per outer transaction | ${MODES.join(' | ')} |`);
console.log(`| --- | ${MODES.map(() => '---').join(' | ')} |`);
for (const group of groups) console.log(`| ${group} | ${MODES.map((m) => median(times[`${m}@${group}`]).toFixed(1)).join(' | ')} |`);
