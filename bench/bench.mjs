#!/usr/bin/env node
// The benchmark driver (run by bench/run.sh, i.e. `make bench`): measures the five targets
// (the no-op Worker, the object floor, the JavaScript counter, ours, and ours without its
// per-request log line)
// under the same launcher and writes every raw figure to bench/results/latest.json;
// bench/report.mjs turns that into BENCHMARKS.md.
//
// Settings (environment), with defaults that take about 15 minutes on 2 cores (more rounds, longer
// runs and the fan-out to 10,000 clients fit in BENCH_TIMEOUT only when set together with it):
//   BENCH_ROUNDS=2          interleaved HTTP rounds (each target gets a fresh server per round)
//   BENCH_DURATION=4        seconds per wrk run
//   BENCH_COLD_RUNS=3       fresh starts per target for the cold-start figures
//   BENCH_FANOUT="floor:1000,floor:1000:sse,js-counter:1000,ours-relays:1000,ours-relays:1000:sse"
//                           fan-out runs (empty: none); ours-relays = through relays, one
//                           relay per 500 sockets (RELAY_SHARDS = clients / 500); a third
//                           part `sse` follows with Server-Sent Event streams, not sockets
//   BENCH_FANOUT_CHANGES=20 changes per fan-out run
//   BENCH_PACED="get:250,post:125"   steady-rate latency runs (empty: none)
//   BENCH_PACED_TARGETS="js-counter,ours,ours-nolog,ours-unbatched"
//   BENCH_CONNECTIONS="1,16,64,256"   wrk connection counts, each a run per target per round
//   BENCH_EVEN="16,64"      keyed-POST runs of BENCH_DURATION s per round at these connection
//                           counts from a client that serves its connections evenly
//                           (bench/even.mjs), for js-counter and ours-nolog (empty: none)
//   BENCH_CAPACITY="1,64"   the object's own capacity with calls of that many changes (empty: none)
//   BENCH_CAPACITY_SECONDS=3
//
// It reports; it never judges speed. It fails (exit 3, after writing the results) only when
// something is wrong rather than slow: a target that does not answer, a counter whose own count
// disagrees with itself or with wrk, a change that did not reach every socket exactly once.
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  ROOT, COMPAT_DATE, TARGETS, OUR_BUILDS, start, stop, cpuSeconds, workerdPeakRssMiB, fetchJson, tail, sleep,
  snapshotBuild, reapedChildrenCpuSeconds,
} from './server.mjs';
import { even } from './even.mjs';

const env = process.env;
const cfg = {
  rounds: Number(env.BENCH_ROUNDS ?? 2),
  duration_s: Number(env.BENCH_DURATION ?? 4),
  wrk: { threads: 2 },
  connections: (env.BENCH_CONNECTIONS ?? '1,16,64,256').split(',').filter(Boolean).map(Number),
  even: (env.BENCH_EVEN ?? '16,64').split(',').filter(Boolean).map(Number),
  capacity: (env.BENCH_CAPACITY ?? '1,64').split(',').filter(Boolean).map(Number),
  capacity_seconds: Number(env.BENCH_CAPACITY_SECONDS ?? 3),
  cold_runs: Number(env.BENCH_COLD_RUNS ?? 3),
  fanout: (env.BENCH_FANOUT ?? 'floor:1000,floor:1000:sse,js-counter:1000,ours-relays:1000,ours-relays:1000:sse').split(',').filter(Boolean)
    .map((s) => { const [target, n, transport] = s.split(':'); return { target, clients: Number(n), sse: transport === 'sse' }; }),
  fanout_changes: Number(env.BENCH_FANOUT_CHANGES ?? 20),
  fanout_interval_ms: 150,
  // Latency at a steady rate (bench/paced.mjs), for the targets users meet: js-counter for
  // reference and ours as configured. A light and a busy rate for reads and for changes.
  paced: (env.BENCH_PACED ?? 'get:250,post:125').split(',').filter(Boolean)
    .map((s) => { const [mode, rate] = s.split(':'); return { mode, rate: Number(rate) }; }),
  paced_targets: (env.BENCH_PACED_TARGETS ?? 'js-counter,ours,ours-nolog,ours-unbatched').split(',').filter(Boolean),
  paced_duration_s: 10,
};
for (const [k, v] of Object.entries({ BENCH_ROUNDS: cfg.rounds, BENCH_DURATION: cfg.duration_s, BENCH_COLD_RUNS: cfg.cold_runs, BENCH_FANOUT_CHANGES: cfg.fanout_changes })) {
  if (!Number.isInteger(v) || v < 0) throw new Error(`${k} must be a whole number, not ${JSON.stringify(env[k])}`);
}
for (const p of cfg.paced) {
  if (!['get', 'post'].includes(p.mode) || !(p.rate > 0)) throw new Error(`BENCH_PACED: "${p.mode}:${p.rate}" is not <get|post>:<req/s>`);
}
for (const f of cfg.fanout) {
  if (!TARGETS[f.target] || f.target === 'noop' || !(f.clients > 0)) throw new Error(`BENCH_FANOUT: "${f.target}:${f.clients}" is not <floor|js-counter|ours|ours-nolog|ours-relays>:<clients>`);
}
for (const t of cfg.paced_targets) if (!TARGETS[t]) throw new Error(`BENCH_PACED_TARGETS: unknown target ${t}`);
if (!cfg.connections.length || cfg.connections.some((x) => !Number.isInteger(x) || x < 1)) throw new Error('BENCH_CONNECTIONS must list whole numbers ≥ 1');
if (cfg.even.some((x) => !Number.isInteger(x) || x < 1)) throw new Error('BENCH_EVEN must list whole numbers ≥ 1');
if (cfg.capacity.some((x) => !Number.isInteger(x) || x < 1 || x > 64)) throw new Error('BENCH_CAPACITY must list sizes 1..64');
/** Targets whose Worker alone (no object call) is also measured. */
const EDGE_ALONE = ['noop', 'ours-nolog'];
// Paths the peers' Workers answer without their object (the cold start's first request).
const ISOLATE_ONLY = { noop: '/', 'js-counter': '/' };
const ORDER = ['noop', 'floor', 'floor-rpc', 'js-counter', 'ours', 'ours-nolog', 'ours-unbatched']; // interleaved in this order every round
const problems = []; // correctness failures: reported at the end, and the run fails
const running = new Set(); // servers to stop if we die half-way
const children = new Set(); // wrk / fan-out processes, likewise
const startServer = async (t) => { const s = await start(t); running.add(s); return s; };
const stopServer = async (s) => { running.delete(s); await stop(s); };
let stopping = false;
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, async () => {
    stopping = true;
    children.forEach((c) => c.kill('SIGKILL'));
    await Promise.all([...running].map(stop));
    process.exit(130);
  });
}

const build = snapshotBuild();
const results = { meta: meta(), config: cfg, sizes: sizes(), http: [], even: [], paced: [], capacity: [], cold_start: [], fanout: [] };
const t0 = Date.now();
try {
  await httpRounds();
  await evenRounds();
  await pacedRuns();
  await capacityRuns();
  await coldStarts();
  await fanouts();
} catch (e) {
  if (stopping) await new Promise(() => {}); // the signal handler is cleaning up and exits
  console.error(`\nbench: ${e.message}`);
  process.exitCode = 1;
} finally {
  await Promise.all([...running].map(stop));
}
if (process.exitCode === 1) process.exit(1);
results.meta.finished = new Date().toISOString();
results.meta.load_average_after = os.loadavg().map((x) => +x.toFixed(2));
results.meta.elapsed_s = Math.round((Date.now() - t0) / 1000);
results.problems = problems;
fs.mkdirSync(path.join(ROOT, 'bench/results'), { recursive: true });
fs.writeFileSync(path.join(ROOT, 'bench/results/latest.json'), JSON.stringify(results, null, 1) + '\n');
console.log(`\nraw results: bench/results/latest.json (${results.meta.elapsed_s} s)`);
if (problems.length) {
  console.error(`\nBENCHMARK FOUND ${problems.length} CORRECTNESS PROBLEM(S):\n  - ${problems.join('\n  - ')}`);
  process.exitCode = 3; // bench/run.sh still writes the report, then fails
}

// ---------------------------------------------------------------------------------------------
// 1-3. HTTP throughput and latency, integrity after the POST run, server CPU per request.
async function httpRounds() {
  for (let round = 1; round <= cfg.rounds; round++) {
    for (const connections of cfg.connections) {
      for (const target of ORDER) {
        const server = await startServer(target);
        try {
          const first = await fetchJson(`${server.url}/api/value`); // it answers, with a value
          if (typeof first.value !== 'number') throw new Error(`${target}: GET /api/value gave ${JSON.stringify(first)}`);
          const get = await wrk(server, 'get', '/api/value', connections);
          const post = await wrk(server, 'post', '/api/increment', connections);
          // The edge alone: a GET the Worker answers itself (ours: 404, no object call), the
          // most any GET through this Worker could reach, whatever its calls to the object cost.
          const edge = EDGE_ALONE.includes(target) ? await wrk(server, 'get', '/api/nothing', connections) : undefined;
          await sleep(500); // let requests wrk abandoned at its deadline finish on the server
          const integrity = await checkIntegrity(server, post);
          const rec = { round, connections, target, get, post, edge, integrity, workerd_peak_rss_mib: round1(workerdPeakRssMiB(server)) };
          results.http.push(rec);
          console.log(`round ${round} c${connections} ${target.padEnd(14)} GET ${fmtRun(get)} | POST ${fmtRun(post)}` +
            (integrity ? ` | server count ${integrity.server_count} (wrk 2xx ${integrity.wrk_2xx})` : '') +
            (post.calls_by_size ? ` | POST calls by size ${JSON.stringify(post.calls_by_size)}` : ''));
        } catch (e) {
          throw new Error(`${target}, round ${round}, ${connections} connections: ${e.message}\nits log:\n${tail(server.log)}`);
        } finally {
          await stopServer(server);
        }
      }
    }
  }
}

// 1b. The keyed-POST tail from a client that serves its connections evenly (bench/even.mjs),
// beside wrk's: the JavaScript counter and ours-nolog, interleaved, a fresh server each run.
async function evenRounds() {
  for (let round = 1; round <= cfg.rounds; round++) {
    for (const connections of cfg.even) {
      for (const target of ['js-counter', 'ours-nolog']) {
        const server = await startServer(target);
        try {
          await fetchJson(`${server.url}/api/value`);
          const c0 = cpuSeconds(server);
          const r = await even(server.url, { connections, seconds: cfg.duration_s, post: true });
          const c1 = cpuSeconds(server);
          if (!r.ok || r.other) problems.push(`even ${target} c${connections} round ${round}: ${r.ok} changes, ${r.other} other answers`);
          const rec = { round, connections, target, ...r, cpu_us_per_req: r.ok ? round1(((c1.total - c0.total) * 1e6) / r.ok) : null,
            calls_by_size: await callsBySize(server), integrity: await checkIntegrity(server, r) };
          results.even.push(rec);
          console.log(`even round ${round} c${connections} ${target.padEnd(10)} ${Math.round(r.rps)} req/s p50 ${round1(r.latency_ms.p50)} p99 ${round1(r.latency_ms.p99)} p99.9 ${round1(r.latency_ms.p999)} ms, per connection ${r.per_connection.fewest}–${r.per_connection.most}`);
        } catch (e) {
          throw new Error(`even ${target}, round ${round}, ${connections} connections: ${e.message}\nits log:\n${tail(server.log)}`);
        } finally {
          await stopServer(server);
        }
      }
    }
  }
}

/** The object's calls by size (see /api/health) for our builds, or null. */
async function callsBySize(server) {
  if (!OUR_BUILDS.includes(server.target)) return null;
  return (await fetchJson(`${server.url}/api/health`)).calls_by_size ?? null;
}

/** One wrk run against `server`, with the server's CPU (from /proc) and the machine's around it. */
async function wrk(server, mode, urlPath, connections) {
  const runId = `b${Math.random().toString(36).slice(2, 10)}`;
  const sizes0 = await callsBySize(server);
  // wrk needs a connection per thread: one connection is one thread.
  const args = [`-t${Math.min(cfg.wrk.threads, connections)}`, `-c${connections}`, `-d${cfg.duration_s}s`, '--latency', '--timeout', '5s',
    '-s', path.join(ROOT, 'bench/wrk.lua'), server.url + urlPath, '--', mode, runId];
  const cpu0 = cpuSeconds(server);
  const m0 = machineTicks();
  const w0 = reapedChildrenCpuSeconds();
  const out = await run('wrk', args, (cfg.duration_s + 30) * 1000);
  const cpu1 = cpuSeconds(server);
  const m1 = machineTicks();
  const w1 = reapedChildrenCpuSeconds(); // wrk has been reaped by now: its CPU is in here
  const sizes1 = await callsBySize(server);
  const line = out.split('\n').find((l) => l.startsWith('BENCH_JSON '));
  if (!line) throw new Error(`wrk printed no BENCH_JSON line:\n${out}`);
  const r = JSON.parse(line.slice('BENCH_JSON '.length));
  const secs = r.duration_us / 1e6;
  const machineBusy = ((m1.busy - m0.busy) / (m1.all - m0.all)) * os.cpus().length;
  const perReq = (s) => (r.requests ? round1((s * 1e6) / r.requests) : null);
  return {
    requests: r.requests,
    rps: round1(r.requests / secs),
    ok: r.ok,
    non2xx: r.non2xx,
    socket_errors: r.errors.connect + r.errors.read + r.errors.write + r.errors.timeout,
    socket_error_kinds: r.errors, // wrk's own split; "status" counts responses >= 400
    latency_ms: Object.fromEntries(Object.entries(r.latency_us).map(([k, v]) => [k, round2(v / 1000)])),
    cpu_us_per_req: perReq(cpu1.total - cpu0.total),
    cpu_us_per_req_workerd: perReq(cpu1.workerd - cpu0.workerd),
    server_cores: round2((cpu1.total - cpu0.total) / secs),
    wrk_cores: round2((w1 - w0) / secs),
    machine_busy_cores: round2(machineBusy),
    // Whatever else ran meanwhile (other work on the machine): the noise behind odd rounds.
    other_cores: round2(Math.max(0, machineBusy - (cpu1.total - cpu0.total + w1 - w0) / secs)),
    // Calls the object received during the run, by how many requests each carried.
    calls_by_size: sizes0 && sizes1 ? Object.fromEntries(Object.keys(sizes1).map((k) => [k, sizes1[k] - (sizes0[k] ?? 0)])) : null,
  };
}

/** The counter's own count must cover every 2xx wrk saw, and agree with itself. */
async function checkIntegrity(server, post) {
  let counts;
  if (OUR_BUILDS.includes(server.target)) {
    const h = await fetchJson(`${server.url}/api/health`);
    // Keys are recorded by their audit entries (unique request ids).
    counts = { version: h.version, audit_entries: h.audit_entries };
  } else if (server.target === 'floor' || server.target === 'floor-rpc') {
    counts = { version: (await fetchJson(`${server.url}/api/value`)).version }; // it keeps only a version
  } else if (server.target === 'js-counter') {
    const [a, v] = await Promise.all([fetchJson(`${server.url}/api/audit`), fetchJson(`${server.url}/api/value`)]);
    counts = { version: v.version, audit_entries: a.count, idempotency_keys: a.idempotency };
  } else {
    return null; // the no-op keeps no count
  }
  const values = Object.values(counts);
  const consistent = values.every((x) => x === values[0]);
  const covers = values[0] >= post.ok;
  const rec = { ...counts, server_count: values[0], wrk_2xx: post.ok, in_flight_at_stop: values[0] - post.ok, consistent, covers };
  if (!consistent || !covers) {
    problems.push(`${server.target}: integrity after POST run: ${JSON.stringify(rec)}`);
    console.error(`INTEGRITY MISMATCH (${server.target}): ${JSON.stringify(rec)}`);
  }
  return rec;
}

// ---------------------------------------------------------------------------------------------
// 4. Latency at a steady rate: what a user waits when the service is not saturated. One fresh
// server per target; the rates run from light to busy.
async function pacedRuns() {
  if (!cfg.paced.length) return;
  for (const target of cfg.paced_targets) {
    const server = await startServer(target);
    try {
      await fetchJson(`${server.url}/api/value`); // build the object first
      for (const { mode, rate } of cfg.paced) {
        const sizes0 = await callsBySize(server);
        const out = await run(process.execPath, [path.join(ROOT, 'bench/paced.mjs'), '--url', server.url, '--mode', mode,
          '--rate', String(rate), '--duration', String(cfg.paced_duration_s)], (cfg.paced_duration_s + 60) * 1000);
        const line = out.split('\n').find((l) => l.startsWith('PACED_JSON '));
        if (!line) throw new Error(`paced printed no result:\n${out}`);
        const r = { target, ...JSON.parse(line.slice('PACED_JSON '.length)) };
        results.paced.push(r);
        console.log(`steady ${target.padEnd(11)} ${mode.toUpperCase().padEnd(4)} ${rate} req/s: ${r.ok}/${r.sent} ok, ` +
          `p50 ${r.latency_ms.p50} p95 ${r.latency_ms.p95} p99 ${r.latency_ms.p99} ms`);
        const sizes1 = await callsBySize(server);
        if (sizes0 && sizes1) r.calls_by_size = Object.fromEntries(Object.keys(sizes1).map((k) => [k, sizes1[k] - (sizes0[k] ?? 0)]));
      }
    } catch (e) {
      throw new Error(`steady-rate ${target}: ${e.message}\nits log:\n${tail(server.log)}`);
    } finally {
      await stopServer(server);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// 4b. The object's own capacity: ready-made calls of 1, 16 and 64 changes straight to the counter
// object (bench/capacity.mjs), without the edge. Its own process group, stopped like a server.
async function capacityRuns() {
  if (!cfg.capacity.length) return;
  const args = [path.join(ROOT, 'bench/capacity.mjs'), '--script', TARGETS.ours.objects ?? TARGETS.ours.script, '--sizes', cfg.capacity.join(','),
    '--seconds', String(cfg.capacity_seconds), '--compat', COMPAT_DATE];
  const child = spawn(process.execPath, args, { cwd: ROOT, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  if (env.BENCH_PGIDS) fs.appendFileSync(env.BENCH_PGIDS, `${child.pid}\n`);
  const server = { pgid: child.pid, stopped: false };
  running.add(server);
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => { out += d; process.stdout.write(String(d).split('\n').filter((l) => l && !l.startsWith('CAPACITY_JSON')).map((l) => l + '\n').join('')); });
  child.stderr.on('data', (d) => { err += d; });
  const code = await new Promise((resolve) => {
    // Every size for changes and reads, through the method and as requests, and one unread request of each.
    const timer = setTimeout(() => { try { process.kill(-child.pid, 'SIGKILL'); } catch {} }, ((4 * cfg.capacity.length + 2) * (cfg.capacity_seconds + 10) + 60) * 1000);
    child.on('close', (c) => { clearTimeout(timer); resolve(c); });
  });
  await stopServer(server);
  const line = out.split('\n').find((l) => l.startsWith('CAPACITY_JSON '));
  if (code !== 0 || !line) throw new Error(`capacity run failed (exit ${code}):\n${out}${err}`);
  results.capacity = JSON.parse(line.slice('CAPACITY_JSON '.length));
}

// ---------------------------------------------------------------------------------------------
// 6. Cold start: a fresh server each time. First a request the Worker answers alone (ours: a
// 404 from the edge; the no-op and the JS counter: a path their Worker answers without the
// object), which is a fresh isolate's first request: the module (for ours, the Wasm) is compiled
// and instantiated. Then the first GET builds the object (and runs its schema migrations); the
// second shows the warm path. The floors send every path to their object, so they have no
// isolate-only figure.
async function coldStarts() {
  for (let i = 1; i <= cfg.cold_runs; i++) {
    for (const target of ORDER) {
      const server = await startServer(target);
      try {
        const alone = OUR_BUILDS.includes(target) ? '/api/nothing' : ISOLATE_ONLY[target];
        const t0 = performance.now();
        if (alone) await (await fetch(`${server.url}${alone}`)).arrayBuffer();
        const t1 = performance.now();
        await fetchJson(`${server.url}/api/value`);
        const t2 = performance.now();
        await fetchJson(`${server.url}/api/value`);
        const t3 = performance.now();
        results.cold_start.push({
          run: i, target, ready_ms: round1(server.readyMs), isolate_ms: alone ? round2(t1 - t0) : null,
          first_ms: round2(t2 - t1), second_ms: round2(t3 - t2),
        });
      } finally {
        await stopServer(server);
      }
    }
  }
  for (const target of ORDER) {
    const rows = results.cold_start.filter((r) => r.target === target);
    const med = (k) => round1(median(rows.map((r) => r[k])));
    console.log(`cold start ${target.padEnd(11)} ready ${med('ready_ms')} ms, isolate's first request ${med('isolate_ms')} ms, first GET ${med('first_ms')} ms, second ${med('second_ms')} ms (medians of ${rows.length})`);
  }
}

// ---------------------------------------------------------------------------------------------
// 7. WebSocket fan-out, each run on a fresh server.
async function fanouts() {
  for (const { target, clients, sse } of cfg.fanout) {
    console.log(`fan-out: ${target}, ${clients} ${sse ? 'event streams' : 'clients'}`);
    // Through relays: one relay per 500 sockets (each under its cap of 1,000 whatever the hash
    // spread), so the counter sends clients / 500 messages per change.
    const relays = target === 'ours-relays' ? Math.max(1, Math.ceil(clients / 500)) : 0;
    const server = relays
      ? await (async () => { const s = await start(target, { args: ['--var', `RELAY_SHARDS=${relays}`] }); running.add(s); return s; })()
      : await startServer(target);
    try {
      await fetchJson(`${server.url}/api/value`); // build the object before timing connects
      const cpu0 = cpuSeconds(server);
      // The server's CPU while the changes are made and delivered (from "sockets ready" to
      // "delivered"): what fanning out costs the runtime, without the connects and closes.
      let atReady = null;
      let atDelivered = null;
      const onLine = (l) => {
        if (/sockets ready/.test(l)) atReady = cpuSeconds(server);
        else if (/ delivered; /.test(l)) atDelivered = cpuSeconds(server);
      };
      const args = [path.join(ROOT, 'bench/fanout.mjs'), '--url', server.url, '--clients', String(clients),
        '--changes', String(cfg.fanout_changes), '--interval', String(cfg.fanout_interval_ms)];
      if (OUR_BUILDS.includes(target)) args.push('--health', '/api/health');
      if (relays) args.push('--spread');
      if (sse) args.push('--sse');
      const out = await run(process.execPath, args, 120_000 + clients * 30, true, onLine);
      const line = out.split('\n').find((l) => l.startsWith('FANOUT_JSON '));
      if (!line) throw new Error(`fanout printed no result:\n${out}`);
      const r = { target, relay_shards: relays || null, ...JSON.parse(line.slice('FANOUT_JSON '.length)) };
      r.server_cpu_s = round2(cpuSeconds(server).total - cpu0.total);
      if (atReady && atDelivered && r.changes_applied) {
        r.server_cpu_ms_per_change = round1(((atDelivered.total - atReady.total) * 1000) / r.changes_applied);
        r.server_cpu_us_per_message = round1(((atDelivered.total - atReady.total) * 1e6) / (r.changes_applied * r.ready));
      }
      r.workerd_peak_rss_mib = round1(workerdPeakRssMiB(server));
      results.fanout.push(r);
      if (r.ready !== clients || r.missing || r.duplicated || r.out_of_order || r.unexpected || r.changes_applied !== r.changes) {
        problems.push(`${target}: fan-out to ${clients}: ready ${r.ready}, changes ${r.changes_applied}/${r.changes}, missing ${r.missing}, ` +
          `duplicated ${r.duplicated}, out of order ${r.out_of_order}, unexpected ${r.unexpected}; ${r.errors.join('; ')}`);
      }
    } catch (e) {
      throw new Error(`fan-out ${target} ${clients}: ${e.message}\nits log:\n${tail(server.log)}`);
    } finally {
      await stopServer(server);
    }
  }
}

// ---------------------------------------------------------------------------------------------
/** Runs a command with a deadline; resolves with its stdout, rejects with a clear message. */
function run(cmd, args, timeoutMs, echo = false, onLine = null) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(child);
    let out = '';
    let err = '';
    let pending = '';
    child.stdout.on('data', (d) => {
      if (onLine) {
        const lines = (pending + d).split('\n');
        pending = lines.pop();
        lines.forEach(onLine);
      }
    });
    child.stdout.on('data', (d) => { out += d; if (echo) process.stdout.write(String(d).split('\n').filter((l) => l && !l.startsWith('FANOUT_JSON')).map((l) => l + '\n').join('')); });
    child.stderr.on('data', (d) => { err += d; });
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`${cmd} timed out after ${timeoutMs} ms\n${out}${err}`)); }, timeoutMs);
    child.on('error', (e) => { clearTimeout(timer); reject(new Error(`${cmd}: ${e.message}`)); });
    child.on('close', (code) => {
      clearTimeout(timer);
      children.delete(child);
      if (code === 0) resolve(out);
      else reject(new Error(`${cmd} exited with ${code}\n${out}${err}`));
    });
  });
}

/** Machine-wide CPU ticks from /proc/stat: all, and busy (not idle or iowait). */
function machineTicks() {
  const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1, 9).map(Number);
  const all = f.reduce((a, b) => a + b, 0);
  return { all, busy: all - f[3] - f[4] };
}

function meta() {
  const sh = (c) => { try { return execFileSync('sh', ['-c', c], { cwd: ROOT, encoding: 'utf8' }).trim(); } catch { return null; } };
  const cpuinfo = fs.readFileSync('/proc/cpuinfo', 'utf8');
  const pkg = (p) => JSON.parse(fs.readFileSync(path.join(ROOT, 'node_modules', p, 'package.json'), 'utf8')).version;
  return {
    started: new Date().toISOString(),
    command: 'make bench',
    // The BENCH_* settings this run was given (a reduced run states them).
    settings: Object.entries(process.env).filter(([k]) => k.startsWith('BENCH_') && !['BENCH_TMP', 'BENCH_PGIDS', 'BENCH_TIMEOUT'].includes(k))
      .map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(' ') || null,
    commit: sh('git rev-parse --short HEAD'),
    uncommitted_changes: Boolean(sh('git status --porcelain -- src Cargo.toml Cargo.lock')),
    machine: {
      nproc: Number(sh('nproc')),
      cpu_model: /model name\s*:\s*(.*)/.exec(cpuinfo)?.[1] ?? 'unknown',
      memory_gib: round1(os.totalmem() / 2 ** 30),
      kernel: os.release(),
    },
    versions: {
      node: process.version,
      miniflare: pkg('miniflare'),
      workerd: sh(`${path.join(ROOT, 'node_modules/.bin/workerd')} --version`),
      wrk: sh('wrk -v 2>&1 | head -n 1 || true'),
      compatibility_date: COMPAT_DATE,
    },
    load_average_before: os.loadavg().map((x) => +x.toFixed(2)),
    note: process.env.BENCH_NOTE || null, // what else ran on the machine, in words
  };
}

/** 5. What a deployment ships: the Wasm module and its JavaScript glue and entry, raw and gzipped. */
function sizes() {
  const one = (name) => {
    const file = path.join(build, name);
    return {
      file: `build/${name}`,
      bytes: fs.statSync(file).size,
      gzip9_bytes: Number(execFileSync('sh', ['-c', 'gzip -9 -c "$1" | wc -c', 'sh', file], { encoding: 'utf8' }).trim()),
      sha256: createHash('sha256').update(fs.readFileSync(file)).digest('hex').slice(0, 16),
    };
  };
  return [one('index_bg.wasm'), one('index.js'), one('entry.js')];
}

function fmtRun(r) {
  return `${Math.round(r.rps)} req/s p50 ${r.latency_ms.p50} p99 ${r.latency_ms.p99} ms, ${r.cpu_us_per_req} µs CPU/req, errors ${r.non2xx + r.socket_errors}`;
}
function median(xs) {
  const s = xs.filter((x) => x !== null && x !== undefined).sort((a, b) => a - b);
  if (!s.length) return null;
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}
function round1(x) { return x === null || x === undefined ? null : Math.round(x * 10) / 10; }
function round2(x) { return x === null || x === undefined ? null : Math.round(x * 100) / 100; }
