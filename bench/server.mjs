// Starting, measuring and stopping one benchmark target (a Worker under bench/miniflare.mjs).
//
// Each server runs in its own process group (node launcher + its workerd child), so:
//  - its CPU time is the sum over the group, read from /proc (no sampling, no extra tools);
//  - stopping it is one signal to the group;
//  - bench/run.sh can kill every group still listed in $BENCH_PGIDS when it exits, whatever
//    happened here (a crash, a timeout, Ctrl-C).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { unstable_readConfig } from 'wrangler';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const COMPAT_DATE = '2026-04-01'; // the same date for every target, as in wrangler.toml

// The targets, all under the same launcher, compatibility date and unpersisted storage.
// Ours gets its per-client limits turned off explicitly: the load comes from one address, and
// the benchmark measures capacity, not the limiter saying no. `ours-nolog` is the very same
// build with its per-request log line sampled away (REQUEST_LOG_SAMPLE_RATE=0): the peers log
// nothing, and locally every log line also costs the launcher that relays it.
// `ours` keeps every socket on the counter (RELAY_SOCKETS_PER_RELAY=0, the design before relays);
// `ours-relays` is the same build with relays on: sockets go through Relay objects, each with one
// upstream socket to the counter (RELAY_SHARDS is set per fan-out run).
// Ours is one script, as deployed, read from the one config (wrangler.toml, through wrangler's own
// reader): its Durable Object classes (the first, the counter, as --do; the rest as --extra-do)
// and its top-level vars, then the benchmark's own settings on top.
const ENTRY = 'build/entry.js';
const CONFIG = unstable_readConfig({ config: path.join(ROOT, 'wrangler.toml') }, { hideWarnings: true });
const [FIRST_DO, ...MORE_DO] = CONFIG.durable_objects.bindings;
const CONFIG_ARGS = [
  '--do', FIRST_DO.class_name, '--binding', FIRST_DO.name,
  ...MORE_DO.flatMap((b) => ['--extra-do', `${b.class_name}:${b.name}`]),
  ...Object.entries(CONFIG.vars ?? {}).flatMap(([k, v]) => ['--var', `${k}=${v}`]),
];
const BASE_ARGS = [...CONFIG_ARGS, '--wasm', '--var', 'RATE_LIMIT_PER_10S=0', '--var', 'WS_CONNECTIONS_PER_CLIENT=0'];
const OURS_ARGS = [...BASE_ARGS, '--var', 'RELAY_SOCKETS_PER_RELAY=0'];
// `ours` and `ours-nolog` batch (the default BATCH_MAX_IN_FLIGHT); `ours-unbatched` does not.
export const TARGETS = {
  noop: { script: 'bench/peers/noop/worker.js', args: [] },
  floor: { script: 'bench/peers/floor/worker.js', args: ['--do', 'Counter', '--binding', 'COUNTER'] },
  'floor-rpc': { script: 'bench/peers/floor-rpc/worker.js', args: ['--do', 'Counter', '--binding', 'COUNTER'] },
  // The floor's object called the way ours batches, in the least JavaScript (not in `make bench`'s
  // sweep; bench/ab.mjs measures it beside the others).
  'floor-batched': { script: 'bench/peers/floor-batched/worker.js', args: ['--do', 'Counter', '--binding', 'COUNTER'] },
  'js-counter': { script: 'bench/peers/js-counter/worker.js', args: ['--do', 'Counter', '--binding', 'COUNTER'] },
  ours: { script: ENTRY, args: OURS_ARGS },
  'ours-nolog': { script: ENTRY, args: [...OURS_ARGS, '--var', 'REQUEST_LOG_SAMPLE_RATE=0'] },
  // As deployed: a METRICS dataset bound (its points discarded), so every request writes one.
  'ours-metrics': { script: ENTRY, args: [...OURS_ARGS, '--metrics'] },
  'ours-relays': { script: ENTRY, args: [...BASE_ARGS, '--var', 'RELAY_SOCKETS_PER_RELAY=1000'] },
  // Batching off (BATCH_MAX_IN_FLIGHT=off): every request is its own call to the object, as
  // before group commit; without log lines, so it compares with ours-nolog.
  'ours-unbatched': { script: ENTRY, args: [...OURS_ARGS, '--var', 'REQUEST_LOG_SAMPLE_RATE=0', '--var', 'BATCH_MAX_IN_FLIGHT=off'] },
};
/** The targets that run this repository's Worker (they serve /api/health). */
export const OUR_BUILDS = ['ours', 'ours-nolog', 'ours-relays', 'ours-metrics', 'ours-unbatched'];

const TICKS_PER_SEC = 100; // USER_HZ: /proc/<pid>/stat times are in these units on Linux
/** Where server logs (and the snapshot of build/) go; bench/run.sh makes and removes it. */
export const TMP = process.env.BENCH_TMP || fs.mkdtempSync('/tmp/bench-');
if (!process.env.BENCH_TMP) process.on('exit', () => fs.rmSync(TMP, { recursive: true, force: true }));

/**
 * Measures a private copy of build/ instead of the live one: a rebuild during the run (the
 * sources may change meanwhile) must not make rounds measure different Workers.
 */
export function snapshotBuild() {
  const dir = path.join(TMP, 'build');
  fs.cpSync(path.join(ROOT, 'build'), dir, { recursive: true });
  for (const t of OUR_BUILDS) Object.assign(TARGETS[t], buildEntry(dir));
  return dir;
}

/**
 * The scripts of a build folder (scripts/build.sh's output): `{script}` for the one-script build
 * (entry.js), `{script, objects}` for a build from when the Worker was two scripts (edge/,
 * objects/), so bench/ab.mjs can still measure an older commit against this one.
 */
export function buildEntry(dir) {
  if (fs.existsSync(path.join(dir, 'entry.js'))) return { script: path.join(dir, 'entry.js'), objects: undefined };
  const edge = fs.existsSync(path.join(dir, 'edge/entry.js')) ? 'edge/entry.js' : 'edge/index.js';
  const objects = fs.existsSync(path.join(dir, 'objects/entry.js')) ? 'objects/entry.js' : 'objects/index.js';
  return { script: path.join(dir, edge), objects: path.join(dir, objects) };
}

/**
 * A target named on a command line (bench/ab.mjs, bench/clients.mjs, bench/polls.mjs): a bench
 * target's name, or a build folder (`build`: this checkout's build/) run as `base` runs ours,
 * optionally followed by vars (`/tmp/b/build,BATCH_MAX_IN_FLIGHT=off`; a launcher flag such as
 * `--metrics` is passed as it is). Registers it in TARGETS; `{ name, key }`.
 */
export function targetOf(given, i, base = 'ours') {
  if (TARGETS[given]) return { name: given, key: given };
  const [dir, ...vars] = given.split(',');
  const key = `build${i}`;
  TARGETS[key] = {
    ...TARGETS[base],
    ...buildEntry(dir === 'build' ? path.join(ROOT, 'build') : path.resolve(dir)),
    args: [...TARGETS[base].args, ...vars.flatMap((v) => (v.startsWith('--') ? [v] : ['--var', v]))],
  };
  return { name: given, key };
}

/** A port nobody listens on right now. */
async function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** Starts `target` on a fresh port with fresh in-memory state; resolves once it is ready. */
export async function start(target, { timeoutMs = 60_000, args = [] } = {}) {
  const t = TARGETS[target];
  if (!t) throw new Error(`unknown target ${target}`);
  const port = await freePort();
  const log = path.join(TMP, `${target}-${port}.log`);
  const fd = fs.openSync(log, 'w');
  const t0 = performance.now();
  // detached: the child gets its own session and process group (like setsid); its output goes
  // straight to a file so a chatty Worker never blocks on a pipe we would have to drain.
  const child = spawn(process.execPath, [
    path.join(ROOT, 'bench/miniflare.mjs'),
    '--script', path.resolve(ROOT, t.script), '--port', String(port), '--compat', COMPAT_DATE,
    ...(t.objects ? ['--objects', path.resolve(ROOT, t.objects)] : []), ...t.args, ...args,
  ], { cwd: ROOT, detached: true, stdio: ['ignore', fd, fd] });
  fs.closeSync(fd);
  const pgid = child.pid;
  if (process.env.BENCH_PGIDS) fs.appendFileSync(process.env.BENCH_PGIDS, `${pgid}\n`);
  let exited = null;
  child.on('exit', (code, sig) => { exited = `exited with ${code ?? sig}`; });

  const server = { target, port, pgid, log, url: `http://127.0.0.1:${port}` };
  while (true) {
    const text = fs.readFileSync(log, 'utf8');
    if (/^ready /m.test(text)) break;
    if (exited || performance.now() - t0 > timeoutMs) {
      await stop(server);
      throw new Error(`${target} did not start (${exited ?? `no ready line after ${timeoutMs} ms`}); its log:\n${tail(log)}`);
    }
    await sleep(20);
  }
  server.readyMs = performance.now() - t0;
  return server;
}

/** Stops the server's whole process group: TERM, then KILL if it is still there after 5 s. */
export async function stop(server) {
  if (!server || server.stopped) return;
  server.stopped = true;
  signalGroup(server.pgid, 'SIGTERM');
  for (let i = 0; i < 100 && groupPids(server.pgid).length; i++) await sleep(50);
  if (groupPids(server.pgid).length) signalGroup(server.pgid, 'SIGKILL');
}

function signalGroup(pgid, sig) {
  try {
    process.kill(-pgid, sig);
  } catch {
    // already gone
  }
}

/** The fields of /proc/<pid>/stat after the command name: state ppid pgrp ... (see proc(5)). */
function statFields(stat) {
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
}

/**
 * CPU seconds of this process's children that have exited and been reaped (cutime + cstime):
 * read around a wrk run, the difference is the load generator's own CPU.
 */
export function reapedChildrenCpuSeconds() {
  const f = statFields(fs.readFileSync('/proc/self/stat', 'utf8'));
  return (Number(f[13]) + Number(f[14])) / TICKS_PER_SEC;
}

/** The live processes of a process group, from /proc: [{pid, comm, ticks}]. */
export function groupPids(pgid) {
  const out = [];
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let stat;
    try {
      stat = fs.readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue; // exited while we looked
    }
    // After the parenthesised command name (which may contain spaces): state ppid pgrp session
    // tty tpgid flags minflt cminflt majflt cmajflt utime stime ...
    const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
    const f = statFields(stat);
    if (Number(f[2]) !== pgid || f[0] === 'Z') continue;
    out.push({ pid: Number(name), comm, ticks: Number(f[11]) + Number(f[12]) });
  }
  return out;
}

/** CPU seconds used so far by the group, in total and by workerd alone. */
export function cpuSeconds(server) {
  let total = 0;
  let workerd = 0;
  for (const p of groupPids(server.pgid)) {
    total += p.ticks;
    if (p.comm.startsWith('workerd')) workerd += p.ticks;
  }
  return { total: total / TICKS_PER_SEC, workerd: workerd / TICKS_PER_SEC };
}

/** Peak resident memory (VmHWM) of the group's workerd process, in MiB. */
export function workerdPeakRssMiB(server) {
  for (const p of groupPids(server.pgid)) {
    if (!p.comm.startsWith('workerd')) continue;
    try {
      const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${p.pid}/status`, 'utf8'));
      if (m) return Number(m[1]) / 1024;
    } catch {
      // gone
    }
  }
  return null;
}

/** fetch with a deadline: a benchmark must never wait forever on one request. */
export async function fetchJson(url, init = {}, timeoutMs = 15_000) {
  const res = await fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
  const text = await res.text();
  if (!res.ok) throw new Error(`${init.method ?? 'GET'} ${url} answered ${res.status}: ${text.slice(0, 300)}`);
  return JSON.parse(text);
}

export function tail(file, lines = 20) {
  try {
    return fs.readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
