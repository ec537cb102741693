#!/usr/bin/env node
// Storage benchmark (part of `make bench`, or alone: `node bench/storage.mjs`): what the audit
// archive does to the counter object's database and to changes.
//
// 1. Bytes per change in the object, before (AUDIT_HOT_ENTRIES=0: everything kept, the design
//    before the archive) and after (a hot window of 1,000 and keys kept 10 s, so that a run of a
//    minute shows the bound; kept 24 h, the key table holds a day of changes): database_bytes
//    sampled every tenth of the run, BENCH_STORAGE_CHANGES keyed changes (default 200,000) from
//    16 concurrent clients.
// 2. Archival throughput: a backlog (BENCH_STORAGE_BACKLOG changes made with archival off, default
//    50,000) is archived after a restart with a window of 1,000; entries archived per second.
// 3. Mutation latency during that archival run against without one: the same closed-loop load
//    (4 clients) while the backlog is archived, then for as long again once it is done.
// 4. The soak's history end to end, at the end of the "after" run (1.): every entry pages back
//    through `/api/audit` (archive and hot, versions 1..N, each `previous_value` the prior
//    `value`), and the whole NDJSON export verifies offline with `audit-verify` against its
//    `Audit-Checkpoint` (every line canonical, no gap, the chain, the root over all N entries).
//
// Under plain Miniflare (bench/miniflare.mjs) with the emulated R2 bucket persisted on disk.
// Writes bench/results/storage.json; bench/report.mjs adds it to BENCHMARKS.md. Figures only:
// it fails loudly when something breaks (a change refused, an entry missing), never on speed.
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { ROOT, TARGETS, TMP, snapshotBuild, start, stop } from './server.mjs';

const CHANGES = Number(process.env.BENCH_STORAGE_CHANGES ?? 200_000);
// The run without the window grows linearly; it may be shorter (BENCH_STORAGE_BEFORE_CHANGES).
const BEFORE_CHANGES = Number(process.env.BENCH_STORAGE_BEFORE_CHANGES ?? CHANGES);
const BACKLOG = Number(process.env.BENCH_STORAGE_BACKLOG ?? 50_000);
const CLIENTS = 16;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let n = 0;
const key = () => `bench-storage-${process.pid}-${Date.now()}-${n++}`;

function args(dir, vars) {
  return ['--persist', dir, '--r2', 'AUDIT_ARCHIVE', ...Object.entries(vars).flatMap(([k, v]) => ['--var', `${k}=${v}`])];
}

async function health(s) {
  const r = await fetch(`${s.url}/api/health`);
  if (r.status !== 200) throw new Error(`health ${r.status}: ${await r.text()}`);
  return r.json();
}

let retried = 0;
let retried500 = 0;
/** One keyed change, retried with the same key after a 503 or a 500 (as a client must: the
 * contract says both changed nothing); its latency includes the retries. */
async function increment(s) {
  const t0 = performance.now();
  const k = key();
  for (let attempt = 0; ; attempt++) {
    const r = await fetch(`${s.url}/api/increment`, { method: 'POST', headers: { 'idempotency-key': k } });
    const body = await r.text();
    if (r.status === 200) return performance.now() - t0;
    if ((r.status !== 503 && r.status !== 500) || attempt >= 20) throw new Error(`increment ${r.status}: ${body}`);
    if (r.status === 500) {
      retried500++;
      if (retried500 <= 3) console.log(`storage: a 500, sent again with its key: ${body.slice(0, 160)}`);
    } else retried++;
    await sleep(1000 * Number(r.headers.get('retry-after') ?? 1));
  }
}

/** `count` changes from `clients` closed-loop clients; `every(done)` is awaited every `step`. */
async function load(s, count, clients, { step = Infinity, every } = {}) {
  let next = 0;
  let nextMark = step;
  const latencies = [];
  const worker = async () => {
    while (next < count) {
      next++;
      latencies.push(await increment(s));
      if (every && next >= nextMark) {
        nextMark += step;
        await every(next);
      }
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: clients }, worker));
  return { latencies, seconds: (performance.now() - t0) / 1000 };
}

/** Closed-loop load for `ms`, or until `until()` is true. */
async function loadFor(s, clients, { ms, until }) {
  const latencies = [];
  const t0 = performance.now();
  const done = () => (until ? until() : performance.now() - t0 >= ms);
  await Promise.all(Array.from({ length: clients }, async () => {
    while (!done()) latencies.push(await increment(s));
  }));
  return { latencies, ms: performance.now() - t0 };
}

const pct = (xs, p) => {
  if (!xs.length) return null;
  const s = [...xs].sort((a, b) => a - b);
  return +s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))].toFixed(2);
};

/** A read, retried after a 503 (an archived segment R2 could not serve right then). */
async function read(s, url) {
  for (let attempt = 0; ; attempt++) {
    const r = await fetch(`${s.url}${url}`);
    if (r.status === 200) return r;
    const body = await r.text();
    if (r.status !== 503 || attempt >= 10) throw new Error(`${url}: ${r.status} ${body}`);
    await sleep(1000 * Number(r.headers.get('retry-after') ?? 1));
  }
}

/** The whole history of `n` entries, end to end: paged, exported and verified offline. */
async function verifyHistory(s, n) {
  const t0 = performance.now();
  let after = 0;
  let previous = 0;
  let pages = 0;
  for (;;) {
    const page = await (await read(s, `/api/audit?after=${after}&limit=1000`)).json();
    pages++;
    for (const e of page.entries) {
      if (e.version !== after + 1 || e.previous_value !== previous) throw new Error(`audit page after ${after}: ${JSON.stringify(e)}`);
      previous = e.value;
      after = e.version;
    }
    if (page.next_after === null) break;
    if (page.next_after !== after) throw new Error(`next_after ${page.next_after} after ${after}`);
  }
  if (after !== n) throw new Error(`paged ${after} entries of ${n}`);
  const pagedSeconds = (performance.now() - t0) / 1000;
  const t1 = performance.now();
  const r = await read(s, '/api/audit/export');
  const text = await r.text();
  const exportSeconds = (performance.now() - t1) / 1000;
  const dir = fs.mkdtempSync(path.join(TMP, 'storage-export-'));
  fs.writeFileSync(path.join(dir, 'audit.ndjson'), text);
  fs.writeFileSync(path.join(dir, 'checkpoint.txt'), Buffer.from(r.headers.get('audit-checkpoint'), 'base64'));
  const v = spawnSync('cargo', ['run', '--quiet', '--bin', 'audit-verify', '--', '--export', path.join(dir, 'audit.ndjson'),
    '--checkpoint', path.join(dir, 'checkpoint.txt'), '--unsigned'], { cwd: ROOT, encoding: 'utf8' });
  if (v.status !== 0) throw new Error(`audit-verify failed (${v.status}): ${v.stdout}${v.stderr}`);
  const lines = text.split('\n').length - 1;
  if (lines !== n) throw new Error(`export has ${lines} lines of ${n}`);
  return {
    entries: n,
    pages,
    paged_seconds: +pagedSeconds.toFixed(1),
    export_bytes: text.length,
    export_seconds: +exportSeconds.toFixed(1),
    tree_size: Number(r.headers.get('audit-tree-size')),
    verified: v.stdout.trim().split('\n').pop(),
  };
}

async function sizeRun(name, vars, CHANGES) {
  const dir = fs.mkdtempSync(path.join(TMP, `storage-${name}-`));
  const s = await start('ours', { args: args(dir, vars) });
  try {
    const before = (await health(s)).database_bytes;
    const samples = [];
    const step = Math.max(1, Math.floor(CHANGES / 10));
    const { seconds } = await load(s, CHANGES, CLIENTS, {
      step,
      every: async (done) => {
        const h = await health(s);
        samples.push({ changes: done, database_bytes: h.database_bytes, hot_entries: h.hot_entries, archived_entries: h.archived_entries });
        console.log(`storage: ${name}: ${done} changes, database_bytes ${h.database_bytes}, hot ${h.hot_entries}, archived ${h.archived_entries}`);
      },
    });
    await sleep(3000); // the last archival run
    const h = await health(s);
    if (h.version !== CHANGES || h.audit_entries !== CHANGES) throw new Error(`${name}: ${JSON.stringify(h)}`);
    samples.push({ changes: CHANGES, database_bytes: h.database_bytes, hot_entries: h.hot_entries, archived_entries: h.archived_entries });
    const half = samples[Math.floor(samples.length / 2) - 1];
    const last = samples[samples.length - 1];
    const history = vars.AUDIT_HOT_ENTRIES > 0 ? await verifyHistory(s, CHANGES) : undefined;
    return {
      history,
      vars,
      changes: CHANGES,
      changes_per_second: +(CHANGES / seconds).toFixed(0),
      database_bytes_start: before,
      database_bytes_end: h.database_bytes,
      bytes_per_change: +((h.database_bytes - before) / CHANGES).toFixed(1),
      bytes_per_change_second_half: +((last.database_bytes - half.database_bytes) / (last.changes - half.changes)).toFixed(1),
      samples,
    };
  } finally {
    await stop(s);
  }
}

async function archivalRun() {
  const dir = fs.mkdtempSync(path.join(TMP, 'storage-archival-'));
  const off = { AUDIT_HOT_ENTRIES: 0, IDEMPOTENCY_RETENTION_SECONDS: 60 };
  let s = await start('ours', { args: args(dir, off) });
  try {
    await load(s, BACKLOG, CLIENTS);
  } finally {
    await stop(s);
  }
  const on = { AUDIT_HOT_ENTRIES: 1000, IDEMPOTENCY_RETENTION_SECONDS: 60 };
  s = await start('ours', { args: args(dir, on) });
  try {
    const target = Math.floor((BACKLOG - 1000) / 1024) * 1024;
    let archived = 0;
    let finished = null;
    const t0 = performance.now();
    const watch = (async () => {
      while (archived < target) {
        archived = (await health(s)).archived_entries;
        if (performance.now() - t0 > 30 * 60_000) throw new Error(`archival stuck at ${archived} of ${target}`);
        await sleep(100);
      }
      finished = performance.now();
    })();
    // The first change after the start sets the alarm; the load runs while the backlog goes.
    const during = await loadFor(s, 4, { until: () => finished !== null });
    await watch;
    const seconds = (finished - t0) / 1000;
    const after = await loadFor(s, 4, { ms: Math.max(5_000, during.ms) });
    const h = await health(s);
    return {
      backlog: BACKLOG,
      archived: h.archived_entries,
      segments: h.archive_segments,
      seconds: +seconds.toFixed(1),
      entries_per_second: +(h.archived_entries / seconds).toFixed(0),
      mutation_during: { n: during.latencies.length, p50_ms: pct(during.latencies, 50), p99_ms: pct(during.latencies, 99), max_ms: pct(during.latencies, 100) },
      mutation_without: { n: after.latencies.length, p50_ms: pct(after.latencies, 50), p99_ms: pct(after.latencies, 99), max_ms: pct(after.latencies, 100) },
      last_archival: h.last_archival,
    };
  } finally {
    await stop(s);
  }
}

if (!TARGETS.ours) throw new Error('no ours target');
snapshotBuild(); // a rebuild during the run must not change what is measured
const load1 = fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
console.log(`storage: ${BEFORE_CHANGES} changes without the window, ${CHANGES} with it, backlog ${BACKLOG}; load average ${load1}`);
const result = { when: new Date().toISOString(), cpus: (await import('node:os')).cpus().length, load_average_start: load1 };
result.before = await sizeRun('before', { AUDIT_HOT_ENTRIES: 0, IDEMPOTENCY_RETENTION_SECONDS: 86400 }, BEFORE_CHANGES);
console.log(`storage: before: ${result.before.bytes_per_change} B/change (${result.before.database_bytes_end} B)`);
result.after = await sizeRun('after', { AUDIT_HOT_ENTRIES: 1000, IDEMPOTENCY_RETENTION_SECONDS: 10 }, CHANGES);
console.log(`storage: after: ${result.after.bytes_per_change} B/change overall, ${result.after.bytes_per_change_second_half} B/change in the second half (${result.after.database_bytes_end} B)`);
console.log(`storage: the whole history: ${JSON.stringify(result.after.history)}`);
result.archival = await archivalRun();
console.log(`storage: archival ${result.archival.entries_per_second} entries/s; p99 during ${result.archival.mutation_during.p99_ms} ms, without ${result.archival.mutation_without.p99_ms} ms`);
result.retried_503 = retried;
result.retried_500 = retried500;
result.load_average_end = fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
fs.mkdirSync(path.join(ROOT, 'bench/results'), { recursive: true });
fs.writeFileSync(path.join(ROOT, 'bench/results/storage.json'), JSON.stringify(result, null, 2) + '\n');
console.log('storage: wrote bench/results/storage.json');
