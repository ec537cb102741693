#!/usr/bin/env node
// The object's own capacity (run by bench/bench.mjs; also on its own):
//   node bench/capacity.mjs --script <build/entry.js> [--sizes 1,16,64] [--seconds 5] [--lanes 4]
//        [--kinds changes,reads] [--via rpc,fetch,pass]
// `rpc` sends every call through the object's method `batch`, as the edge sends a batch; `fetch`
// (size 1 only) sends a request (`/mutate`, `/value`) whose answer's body the caller reads;
// `pass` (size 1 only) sends a request whose body the caller never reads, as the edge sends a
// request alone (and every request with BATCH_MAX_IN_FLIGHT=off): its response goes to the
// client as it is.
// Starts, under plain Miniflare, our Worker (it owns the Counter object class, in-memory
// storage) and bench/capacity/driver.js bound to that class, then for each size asks the driver
// to keep calls of that many changes in flight for the given seconds. Around each run it reads
// workerd's CPU time from /proc. Prints one line per size and a final
//   CAPACITY_JSON [{"size","calls","changes","errors","seconds","changes_per_s","calls_per_s","cpu_us_per_call","cpu_us_per_change","workerd_cores"}, ...]
// Reports figures only. Stops Miniflare (and workerd) before it exits.
import { Miniflare, Log, LogLevel } from 'miniflare';
import { parseArgs } from 'node:util';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { values: a } = parseArgs({
  options: {
    script: { type: 'string', default: path.join(ROOT, 'build/entry.js') },
    sizes: { type: 'string', default: '1,16,64' },
    seconds: { type: 'string', default: '5' },
    lanes: { type: 'string', default: '4' },
    compat: { type: 'string', default: '2026-04-01' },
    kinds: { type: 'string', default: 'changes,reads' },
    via: { type: 'string', default: 'rpc,fetch,pass' },
  },
});
const kinds = a.kinds.split(',');
const vias = a.via.split(',');
const sizes = a.sizes.split(',').map(Number);
const seconds = Number(a.seconds);
const lanes = Number(a.lanes);
if (sizes.some((s) => !(s >= 1 && s <= 64)) || !(seconds > 0) || !(lanes >= 1)) {
  console.error('usage: node bench/capacity.mjs [--script build/entry.js] [--sizes 1,16,64] [--seconds 5] [--lanes 4]');
  process.exit(2);
}
const script = path.resolve(a.script);

const mf = new Miniflare({
  host: '127.0.0.1',
  port: 0,
  cf: false,
  log: new Log(LogLevel.WARN),
  workers: [
    {
      name: 'driver',
      modules: true,
      scriptPath: path.join(ROOT, 'bench/capacity/driver.js'),
      compatibilityDate: a.compat,
      durableObjects: { COUNTER: { className: 'Counter', scriptName: 'counter', useSQLite: true } },
    },
    {
      name: 'counter',
      modules: true,
      scriptPath: script,
      modulesRoot: path.dirname(script),
      modulesRules: [{ type: 'CompiledWasm', include: ['**/*.wasm'], fallthrough: true }, { type: 'ESModule', include: ['**/*.js'], fallthrough: true }],
      compatibilityDate: a.compat,
      durableObjects: { COUNTER: { className: 'Counter', useSQLite: true } },
      durableObjectsPersist: false,
      bindings: { RATE_LIMIT_PER_10S: '0', WS_CONNECTIONS_PER_CLIENT: '0' },
    },
  ],
});
let stopping = false;
const stop = async (code) => {
  if (stopping) return;
  stopping = true;
  setTimeout(() => process.exit(code || 1), 5000).unref();
  await mf.dispose().catch(() => {});
  process.exit(code);
};
process.on('SIGTERM', () => stop(143));
process.on('SIGINT', () => stop(130));

/** CPU seconds of this process's workerd children (user + system), from /proc. */
function workerdCpu() {
  let ticks = 0;
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let stat;
    try {
      stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue;
    }
    const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(f[1]) === process.pid && comm.startsWith('workerd')) ticks += Number(f[11]) + Number(f[12]);
  }
  return ticks / 100;
}

const results = [];
try {
  const url = await mf.ready;
  // Build the object (Wasm class, schema) before measuring.
  const warm = await mf.dispatchFetch(new URL(`?size=1&seconds=0.5&lanes=1&run=warm`, url));
  if (!warm.ok) throw new Error(`warm-up failed: ${warm.status} ${await warm.text()}`);
  for (const via of vias) for (const kind of kinds) for (const size of sizes) {
    // A batch is only a method call; only a request alone goes unread.
    if (via !== 'rpc' && size !== 1) continue;
    const cpu0 = workerdCpu();
    const t0 = performance.now();
    const res = await mf.dispatchFetch(new URL(`?size=${size}&seconds=${seconds}&lanes=${lanes}&run=${via}-${kind}${size}&kind=${kind}&via=${via}`, url));
    const wall = (performance.now() - t0) / 1000;
    const cpu = workerdCpu() - cpu0;
    if (!res.ok) throw new Error(`${kind} size ${size}: ${res.status} ${await res.text()}`);
    const r = await res.json();
    const applied = kind === 'reads' ? 0 : r.calls * size;
    if (r.errors || r.changes !== applied) throw new Error(`${kind} size ${size}: ${JSON.stringify(r)} (every change must apply, a read none)`);
    // `changes`: what the calls carried (changes applied, or reads answered).
    const done = r.calls * size;
    const rec = {
      kind, size, lanes, via, calls: r.calls, changes: done, errors: r.errors, seconds: +(r.ms / 1000).toFixed(2),
      changes_per_s: Math.round(done / (r.ms / 1000)),
      calls_per_s: Math.round(r.calls / (r.ms / 1000)),
      cpu_us_per_call: Math.round((cpu * 1e6) / r.calls),
      cpu_us_per_change: +((cpu * 1e6) / done).toFixed(1),
      workerd_cores: +(cpu / wall).toFixed(2),
    };
    results.push(rec);
    console.log(`capacity: ${size} ${kind} per call (${rec.via}): ${rec.changes_per_s} ${kind}/s (${rec.calls_per_s} calls/s), ${rec.cpu_us_per_change} µs CPU per ${kind === 'reads' ? 'read' : 'change'}, ${rec.cpu_us_per_call} µs per call`);
  }
  console.log(`CAPACITY_JSON ${JSON.stringify(results)}`);
} catch (e) {
  console.error(`capacity: ${e.message}`);
  await stop(1);
}
await stop(0);
