#!/usr/bin/env node
// Where a request's CPU goes (not part of `make bench`): starts one target under the benchmark
// launcher with workerd's V8 inspector open, runs wrk against it, takes a CPU profile of each
// Worker over the run, and prints the functions
// with the most self time, as a share of the samples and in µs per request.
//
//   node bench/profile.mjs [--mode get|post|miss] [--connections 16] [--duration 5] [--top 30]
//        <target> [NAME=VALUE ...]
//
// A target is a bench target (`ours-nolog`, `floor`, …) or `build` (this checkout's build/ as
// it is, without log lines); the vars after it reach our Worker (`BATCH_MAX_IN_FLIGHT=off`).
// Sampling costs CPU of its own (about 10% here at 100 µs), so compare profiles with profiles,
// never with `make bench`'s figures.
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { parseArgs } from 'node:util';
import WebSocket from 'ws';
import { ROOT, TARGETS, buildEntry, start, stop } from './server.mjs';

const { values: opt, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    mode: { type: 'string', default: 'get' },
    connections: { type: 'string', default: '16' },
    duration: { type: 'string', default: '5' },
    top: { type: 'string', default: '30' },
    interval: { type: 'string', default: '100' },
  },
});
const [target = 'build', ...vars] = positionals;
let key = target;
if (target === 'build') {
  key = 'ours-nolog';
  Object.assign(TARGETS[key], buildEntry(path.join(ROOT, 'build')));
}
if (!TARGETS[key]) throw new Error(`unknown target ${target}`);
const PATHS = { get: 'value', post: 'increment', miss: 'nothing' };
if (!PATHS[opt.mode]) throw new Error(`unknown mode ${opt.mode}`);

const inspector = 9300 + Math.floor(Math.random() * 500);
const server = await start(key, { args: ['--inspector', String(inspector), ...vars.flatMap((v) => ['--var', v])] });

/** One inspector session: send(method, params) → result. */
async function session(url) {
  const ws = new WebSocket(url);
  await new Promise((ok, fail) => {
    ws.once('open', ok);
    ws.once('error', fail);
  });
  let id = 0;
  const pending = new Map();
  ws.on('message', (data) => {
    const m = JSON.parse(data);
    if (m.id && pending.has(m.id)) {
      const { ok, fail } = pending.get(m.id);
      pending.delete(m.id);
      if (m.error) fail(new Error(`${m.error.message}`));
      else ok(m.result);
    }
  });
  const send = (method, params = {}) =>
    new Promise((ok, fail) => {
      const n = ++id;
      pending.set(n, { ok, fail });
      ws.send(JSON.stringify({ id: n, method, params }));
      setTimeout(() => pending.has(n) && fail(new Error(`${method}: no answer`)), 60_000).unref();
    });
  return { send, close: () => ws.close() };
}

function wrk(c, seconds) {
  const out = execFileSync('wrk', ['-t2', `-c${c}`, `-d${seconds}s`, '--latency', '-s', path.join(ROOT, 'bench/wrk.lua'),
    `${server.url}/api/${PATHS[opt.mode]}`, '--', opt.mode === 'post' ? 'post' : 'get', `prof${Date.now()}`], { encoding: 'utf8' });
  return JSON.parse(/BENCH_JSON (.*)/.exec(out)[1]);
}

/** Self time per function, from a V8 CPU profile. */
function selfTimes(profile) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const us = new Map();
  const deltas = profile.timeDeltas;
  profile.samples.forEach((id, i) => {
    const f = byId.get(id).callFrame;
    const name = `${f.functionName || '(anonymous)'} ${f.url ? `${path.basename(f.url)}:${f.lineNumber + 1}` : ''}`.trim();
    us.set(name, (us.get(name) ?? 0) + (deltas[i + 1] ?? deltas[i] ?? 0));
  });
  return [...us.entries()].sort((a, b) => b[1] - a[1]);
}

try {
  wrk(Number(opt.connections), 2); // warm-up: the object exists, the code is compiled
  const list = await (await fetch(`http://127.0.0.1:${inspector}/json/list`)).json();
  const sessions = [];
  for (const t of list) {
    const s = await session(t.webSocketDebuggerUrl);
    await s.send('Profiler.enable');
    await s.send('Profiler.setSamplingInterval', { interval: Number(opt.interval) });
    await s.send('Profiler.start');
    sessions.push({ title: t.title || t.id, s });
  }
  const w = wrk(Number(opt.connections), Number(opt.duration));
  console.log(`${target} ${vars.join(' ')}: ${opt.mode} at ${opt.connections} connections, ${w.requests} requests in ${opt.duration} s (${(w.requests / Number(opt.duration)).toFixed(0)}/s), ${w.non2xx} non-2xx`);
  for (const { title, s } of sessions) {
    const { profile } = await s.send('Profiler.stop');
    s.close();
    const rows = selfTimes(profile);
    const total = rows.reduce((n, [, t]) => n + t, 0);
    const busy = rows.filter(([n]) => n !== '(idle)' && n !== '(program)').reduce((n, [, t]) => n + t, 0);
    console.log(`\n## ${title}: ${(busy / w.requests).toFixed(1)} µs of JavaScript/Wasm per request (samples outside (idle) and (program); ${(total / 1e6).toFixed(1)} s profiled)`);
    for (const [name, t] of rows.slice(0, Number(opt.top))) {
      console.log(`${((100 * t) / total).toFixed(1).padStart(5)}%  ${(t / w.requests).toFixed(2).padStart(7)} µs/req  ${name}`);
    }
  }
} finally {
  await stop(server);
}
