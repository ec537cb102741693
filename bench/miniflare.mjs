#!/usr/bin/env node
// Starts one Worker under plain Miniflare 4 (workerd, no wrangler) on 127.0.0.1:<port>, prints
// "ready <url>", and serves until SIGTERM/SIGINT (then Miniflare stops workerd). The benchmarks run
// every target (the no-op, the JavaScript counter and our Worker) through this same launcher so
// they share one runtime path and one configuration. The ready line is
//   ready http://127.0.0.1:<port>/ pid=<node pid> (<startup ms> ms) script=... [do=Class:BINDING] [wasm]
// bench/run.sh starts it in its own process group (node + its workerd child), so the group can be
// measured (CPU, memory) and stopped as one with `kill -TERM -- -<pgid>`.
//
//   node bench/miniflare.mjs --script <path/to/worker.js> --port <n>
//        [--do <ClassName> [--binding <NAME>]]   SQLite-backed Durable Object (binding defaults to COUNTER)
//        [--extra-do <ClassName>:<BINDING>]...   more SQLite-backed Durable Object classes of the same script
//        [--objects <path/to/objects.js>]         the Durable Object classes (--do, --extra-do) live in this
//                                                 second script, which the first binds by script name (a
//                                                 build from when ours was two scripts, for bench/ab.mjs);
//                                                 --var and --r2 reach both
//        [--wasm]                                 add the CompiledWasm module rule (workers-rs / wasm-bindgen output)
//        [--compat <YYYY-MM-DD>]                  compatibility date (default 2026-04-01, as in wrangler.toml)
//        [--persist <dir>]                        persist DO storage (and R2) (default: in memory, fresh every start)
//        [--r2 <BINDING>]...                      an R2 bucket binding (emulated; persisted with --persist)
//        [--var NAME=VALUE]...                    a plain-text var (env.NAME), like wrangler.toml [vars]
//        [--metrics]                              bind METRICS (a dataset whose points are discarded) and
//                                                 CF_VERSION_METADATA, so the Worker writes its points as deployed
//        [--timed]                                a front Worker notes each request's time inside the Worker
//                                                 (GET /__handler_ms; bench/tails.mjs)
//        [--verbose]                              show Miniflare's own log at INFO level (logs every request: slow)
//        [--workerd-verbose]                      pass --verbose to workerd (diagnostics)
//        [--inspector <port>]                     open workerd's V8 inspector on 127.0.0.1:<port>
//                                                 (bench/profile.mjs takes CPU profiles through it)
//
// Examples:
//   node bench/miniflare.mjs --script bench/peers/noop/worker.js --port 8801
//   node bench/miniflare.mjs --script bench/peers/js-counter/worker.js --port 8802 --do Counter --binding COUNTER
//   node bench/miniflare.mjs --script build/entry.js --port 8803 --do Counter --binding COUNTER --extra-do Relay:RELAY --wasm
import { Miniflare, Log, LogLevel } from 'miniflare';
import { parseArgs } from 'node:util';
import path from 'node:path';
import fs from 'node:fs';

const { values: a } = parseArgs({
  options: {
    script: { type: 'string' },
    port: { type: 'string' },
    do: { type: 'string' },
    binding: { type: 'string', default: 'COUNTER' },
    wasm: { type: 'boolean', default: false },
    compat: { type: 'string', default: '2026-04-01' },
    persist: { type: 'string' },
    var: { type: 'string', multiple: true, default: [] },
    'extra-do': { type: 'string', multiple: true, default: [] },
    objects: { type: 'string' },
    metrics: { type: 'boolean', default: false },
    timed: { type: 'boolean', default: false },
    r2: { type: 'string', multiple: true, default: [] },
    verbose: { type: 'boolean', default: false },
    'workerd-verbose': { type: 'boolean', default: false },
    inspector: { type: 'string' },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (a.help || !a.script || !a.port) {
  console.error('usage: node bench/miniflare.mjs --script <worker.js> --port <n> [--do <Class> [--binding <NAME>]] [--extra-do <Class>:<BINDING>]... [--objects <objects.js>] [--wasm] [--timed] [--compat <date>] [--persist <dir>] [--var NAME=VALUE]... [--verbose] [--workerd-verbose]');
  process.exit(a.help ? 0 : 2);
}
const scriptPath = path.resolve(a.script);
if (!fs.existsSync(scriptPath)) {
  console.error(`no such script: ${scriptPath}`);
  process.exit(2);
}

const opts = {
  modules: true,
  scriptPath,
  // Module names are paths relative to modulesRoot (default: cwd); workerd rejects names with "..",
  // so root them at the script's own directory and the harness works from any cwd.
  modulesRoot: path.dirname(scriptPath),
  // Miniflare follows static imports from scriptPath; .wasm imports need an explicit rule.
  modulesRules: a.wasm ? [{ type: 'CompiledWasm', include: ['**/*.wasm'], fallthrough: true }, { type: 'ESModule', include: ['**/*.js'], fallthrough: true }] : [],
  compatibilityDate: a.compat,
  cf: false, // never fetch https://workers.cloudflare.com/cf.json
  host: '127.0.0.1',
  port: Number(a.port),
  log: new Log(a.verbose ? LogLevel.INFO : LogLevel.WARN),
  verbose: a['workerd-verbose'], // workerd's own --verbose (internal errors, dropped connections)
  ...(a.inspector ? { inspectorPort: Number(a.inspector), inspectorHost: '127.0.0.1' } : {}),
};
const vars = a.var.map((v) => v.split(/=(.*)/s, 2));
if (vars.some(([k, v]) => !k || v === undefined)) {
  console.error('--var takes NAME=VALUE');
  process.exit(2);
}
if (vars.length) opts.bindings = Object.fromEntries(vars);
if (a.do) {
  opts.durableObjects = { [a.binding]: { className: a.do, useSQLite: true } };
  opts.durableObjectsPersist = a.persist ?? false; // false = in-memory
}
for (const spec of a['extra-do']) {
  const [className, binding] = spec.split(':');
  if (!className || !binding) {
    console.error('--extra-do takes Class:BINDING');
    process.exit(2);
  }
  opts.durableObjects = { ...(opts.durableObjects ?? {}), [binding]: { className, useSQLite: true } };
  opts.durableObjectsPersist = a.persist ?? false;
}

if (a.r2.length) {
  opts.r2Buckets = a.r2;
  opts.r2Persist = a.persist ?? false;
}

// The front Worker of --timed (below).
const TIMED = `const times = [];
export default {
  async fetch(request, env) {
    if (new URL(request.url).pathname === '/__handler_ms') return Response.json(times.splice(0));
    const t0 = Date.now();
    const response = await env.TARGET.fetch(request);
    if (times.length < 1e6) times.push(Date.now() - t0);
    return response;
  },
};`;

// --objects: the classes move to a second worker (its own modules root: both builds name their
// module index_bg.wasm) and the first binds them by script name.
let mfOpts = opts;
if (a.objects || a.metrics || a.timed) {
  const { cf, host, port, log, verbose, durableObjectsPersist, r2Persist, inspectorPort, inspectorHost, ...worker } = opts;
  const workers = [];
  if (a.objects) {
    const objectsPath = path.resolve(a.objects);
    if (!fs.existsSync(objectsPath)) {
      console.error(`no such script: ${objectsPath}`);
      process.exit(2);
    }
    const classes = worker.durableObjects ?? {};
    worker.durableObjects = Object.fromEntries(
      Object.entries(classes).map(([binding, { className }]) => [binding, { className, scriptName: 'objects' }]),
    );
    const { scriptPath: _s, modulesRoot: _m, durableObjects: _d, wrappedBindings: _w, ...shared } = worker;
    workers.push({ ...shared, name: 'objects', scriptPath: objectsPath, modulesRoot: path.dirname(objectsPath), durableObjects: classes });
  }
  // --metrics: the dataset is a wrapped binding whose writeDataPoint drops the point (what the
  // local runtime does with a real dataset too), so the Worker pays for building and writing
  // every point.
  if (a.metrics) {
    worker.bindings = {
      ...(worker.bindings ?? {}),
      CF_VERSION_METADATA: { id: '00000000-0000-4000-8000-000000000000', tag: '', timestamp: '' },
    };
    worker.wrappedBindings = { METRICS: { scriptName: 'metrics-sink' } };
    workers.push({ name: 'metrics-sink', modules: true, script: 'export default function () { return { writeDataPoint() {} }; }' });
  }
  workers.unshift({ name: 'bench', ...worker });
  // --timed: a front Worker takes every request and hands it to the one under test through a
  // service binding, noting how long each took there: from the moment the runtime gave it to a
  // Worker to the moment its response was ready. `GET /__handler_ms` takes the times noted so
  // far (a JSON array of milliseconds). A client's latency minus this is the time the request
  // spent in the runtime before and after any Worker code (bench/tails.mjs).
  if (a.timed) workers.unshift({ name: 'timed', modules: true, compatibilityDate: a.compat, serviceBindings: { TARGET: 'bench' }, script: TIMED });
  mfOpts = { cf, host, port, log, verbose, durableObjectsPersist, r2Persist, inspectorPort, inspectorHost, workers };
}


// Register our signal handler before `new Miniflare`: Miniflare 4 installs its own SIGINT/SIGTERM
// exit hook in its constructor (it disposes workerd, removes its temporary miniflare-* dir and exits
// with 128+signal), and that hook runs right after this listener. The dispose below is a fallback
// in case a future Miniflare stops doing that.
let mf;
let stopping = false;
const stop = (sig) => {
  if (stopping) return;
  stopping = true;
  console.log(`stopping (${sig})`);
  setTimeout(() => process.exit(1), 5000).unref(); // never hang on shutdown
  Promise.resolve(mf?.dispose())
    .catch(() => {})
    .finally(() => process.exit(0));
};
process.on('SIGTERM', () => stop('SIGTERM'));
process.on('SIGINT', () => stop('SIGINT'));

const t0 = performance.now();
mf = new Miniflare(mfOpts);
let url;
try {
  url = await mf.ready;
} catch (e) {
  console.error('miniflare failed to start:', e);
  process.exit(1);
}
console.log(`ready ${url.href} pid=${process.pid} (${(performance.now() - t0).toFixed(0)} ms) script=${a.script}${a.objects ? ` objects=${a.objects}` : ''}${a.do ? ` do=${a.do}:${a.binding}` : ''}${a.wasm ? ' wasm' : ''}`);
