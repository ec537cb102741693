#!/usr/bin/env node
// Ledger benchmark (part of `make bench`, or alone: `node bench/export.mjs`): a trail of
// BENCH_EXPORT_ROWS audit entries (default 1,000,000), its upgrade to the Merkle tree, and its
// streamed export, against our Worker under plain Miniflare (workerd, bench/miniflare.mjs).
//
// 1. Seeding: the object is created (one change), stopped, and its SQLite file is rewritten with
//    python3's sqlite3 into the shape schema 3 left (no Merkle tree, no key table) with
//    BENCH_EXPORT_ROWS entries of mixed operations and amounts, recent timestamps (so no key
//    expires during the run) and a chained value.
// 2. The upgrade, as an operator meets it: the first start runs migrations 4 and 5 (the key
//    table is filled from the trail in one transaction) before its first answer; then the
//    object's alarm hashes the existing entries 1,000 per transaction (`counter/ledger.rs`)
//    while the ledger endpoints answer 503. Measured: time to the first answer, backfill time
//    and entries/s, workerd's CPU per entry hashed (the Merkle append of one change: its leaf
//    bytes, the hashes of the subtrees it completes, one row; plus reading the entry back, which
//    a commit does not need, so an upper bound), and the Merkle rows written per entry and their
//    bytes (counted in the file afterwards).
// 3. The export: `GET /api/audit/export?format=ndjson` then `format=csv`, each streamed end to
//    end by a client that reads as fast as it can, while workerd's resident memory (VmRSS) is
//    sampled every 100 ms: rows/s, bytes, RSS before, peak and at the end, and the growth from a
//    quarter of the way through to the end (flat memory: about zero). The NDJSON file goes to
//    `audit-verify --export` with the export's own `Audit-Checkpoint` header (unsigned: no key is
//    configured): every line canonical, versions 1..N, the chain, the values, the root equal to
//    the checkpoint's. CSV: header, N rows, versions in order. Then the NDJSON export once more
//    (memory that grew with the rows exported would climb again), and a client that reads
//    ~100 KB and stops reading for 5 s (the Worker must stop reading pages: backpressure).
//
// Writes bench/results/export.json; bench/report.mjs adds it to BENCHMARKS.md. Figures only: it
// fails loudly when something is wrong (a short or unverifiable export), never on speed or memory.
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { ROOT, TMP, start, stop, groupPids, cpuSeconds, sleep } from './server.mjs';

const ROWS = Number(process.env.BENCH_EXPORT_ROWS ?? 1_000_000);
if (!Number.isInteger(ROWS) || ROWS < 1) throw new Error('BENCH_EXPORT_ROWS must be a positive whole number');
const VARS = ['--var', 'AUDIT_HOT_ENTRIES=0'];
const loadavg = () => os.loadavg().map((x) => +x.toFixed(2));
const mib = (kb) => +(kb / 1024).toFixed(1);

function workerdPid(s) {
  const p = groupPids(s.pgid).find((x) => x.comm.startsWith('workerd'));
  if (!p) throw new Error('no workerd process in the server group');
  return p.pid;
}

/** VmRSS of a process in kB (null once it is gone). */
function rssKb(pid) {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

/** The object's SQLite file under the persist folder. */
function sqliteFile(dir) {
  const found = [];
  const walk = (d) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.sqlite') && e.name !== 'metadata.sqlite') found.push(p);
    }
  };
  walk(dir);
  if (found.length !== 1) throw new Error(`expected one object database under ${dir}, found ${JSON.stringify(found)}`);
  return found[0];
}

/** Runs SQL on the file with python3's sqlite3; returns the last statement's rows. */
function sql(file, script) {
  const program = `
import json, sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
rows = []
for stmt in [s for s in sys.argv[2].split(';') if s.strip()]:
    rows = db.execute(stmt).fetchall()
print(json.dumps(rows))
db.close()
`;
  const out = execFileSync('python3', ['-c', program, file, script], { encoding: 'utf8', maxBuffer: 1 << 20 });
  return JSON.parse(out);
}

/** The trail as schema 3 left it: `rows` entries, no Merkle tree, no key table. */
function seed(file, rows) {
  sql(file, `
    DROP TABLE IF EXISTS merkle;
    DROP TABLE IF EXISTS idempotency_keys;
    DROP TABLE IF EXISTS archive_segments;
    DROP TABLE IF EXISTS archive_runs;
    DELETE FROM audit;
    CREATE UNIQUE INDEX IF NOT EXISTS audit_request_id ON audit (request_id);
    BEGIN;
    WITH RECURSIVE n(v) AS (SELECT 1 UNION ALL SELECT v + 1 FROM n WHERE v < ${rows}),
      d AS (SELECT v,
                   CASE WHEN v % 3 = 0 THEN 'decrement' ELSE 'increment' END AS op,
                   v % 7 + 1 AS amount,
                   CASE WHEN v % 3 = 0 THEN -(v % 7 + 1) ELSE v % 7 + 1 END AS delta
              FROM n),
      s AS (SELECT v, op, amount, delta, SUM(delta) OVER (ORDER BY v ROWS UNBOUNDED PRECEDING) AS value FROM d)
    INSERT INTO audit (version, operation, amount, previous_value, value, request_id, at)
      SELECT v, op, amount, value - delta, value, 'seed-' || v,
             strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-3600 seconds', '+' || (v / 1000.0) || ' seconds')
        FROM s;
    UPDATE counter SET version = ${rows}, value = (SELECT value FROM audit WHERE version = ${rows}),
                       updated_at = (SELECT at FROM audit WHERE version = ${rows});
    UPDATE schema_meta SET version = 3;
    COMMIT`);
  const [[count, last]] = sql(file, 'SELECT count(*), max(version) FROM audit');
  if (count !== rows || last !== rows) throw new Error(`seeded ${count} rows up to ${last}, wanted ${rows}`);
}

/** Streams one export to `file` (or nowhere), sampling workerd's RSS; returns the figures. */
async function streamExport(s, format, file) {
  const pid = workerdPid(s);
  const before = rssKb(pid);
  const samples = [];
  let bytes = 0;
  let newlines = 0;
  let last = '';
  let first = '';
  const timer = setInterval(() => samples.push({ t: performance.now(), bytes, newlines, rss_kb: rssKb(pid) }), 100);
  const cpu0 = cpuSeconds(s).workerd;
  const t0 = performance.now();
  const res = await fetch(`${s.url}/api/audit/export?format=${format}`, { signal: AbortSignal.timeout(30 * 60_000) });
  if (res.status !== 200) throw new Error(`export ${format}: ${res.status} ${await res.text()}`);
  const headers = { tree_size: Number(res.headers.get('audit-tree-size')), checkpoint: res.headers.get('audit-checkpoint') };
  const out = file ? fs.openSync(file, 'w') : null;
  try {
    for await (const chunk of res.body) {
      bytes += chunk.length;
      for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) newlines++;
      if (first.length < 200) first += Buffer.from(chunk.subarray(0, 200)).toString();
      last = (last + Buffer.from(chunk.subarray(Math.max(0, chunk.length - 300))).toString()).slice(-300);
      if (out !== null) fs.writeSync(out, chunk);
    }
  } finally {
    clearInterval(timer);
    if (out !== null) fs.closeSync(out);
  }
  const seconds = (performance.now() - t0) / 1000;
  const cpu = cpuSeconds(s).workerd - cpu0;
  await sleep(1000);
  const after = rssKb(pid);
  samples.push({ t: performance.now(), bytes, newlines, rss_kb: after });
  const rss = samples.map((x) => x.rss_kb).filter((x) => x !== null);
  // Growth over the last three quarters: what a longer export would keep adding.
  const quarter = samples.find((x) => x.bytes >= bytes / 4) ?? samples[0];
  const lastDuring = samples[samples.length - 2] ?? quarter;
  return {
    format,
    tree_size: headers.tree_size,
    checkpoint: headers.checkpoint,
    bytes,
    lines: newlines,
    seconds: +seconds.toFixed(2),
    rows_per_s: Math.round(ROWS / seconds),
    mib_per_s: +(bytes / 1048576 / seconds).toFixed(1),
    workerd_cpu_us_per_row: +((cpu * 1e6) / ROWS).toFixed(2),
    rss_before_mib: mib(before),
    rss_peak_mib: mib(Math.max(...rss)),
    rss_at_quarter_mib: mib(quarter.rss_kb),
    rss_at_end_of_stream_mib: mib(lastDuring.rss_kb),
    rss_after_mib: mib(after),
    rss_growth_last_three_quarters_mib: mib(lastDuring.rss_kb - quarter.rss_kb),
    first_bytes: first.slice(0, 200),
    last_bytes: last,
    samples: samples.filter((_, i) => i % 10 === 0).map((x) => ({ rows: Math.round((x.bytes / bytes) * ROWS), rss_mib: mib(x.rss_kb) })),
  };
}

/**
 * A client that reads the first ~100 KB of the NDJSON export and then stops reading for a few
 * seconds (a raw socket, so no client library buffers for it): the Worker must stop asking the
 * object for pages (it writes a page only when the stream wants more), so workerd's memory must
 * not grow by what is left of the export.
 */
async function stalledReader(s, stallSeconds = 5) {
  const pid = workerdPid(s);
  const before = rssKb(pid);
  const sock = net.connect(s.port, '127.0.0.1');
  let received = 0;
  let peak = before;
  const paused = new Promise((resolve, reject) => {
    sock.on('error', reject);
    sock.on('data', (d) => {
      received += d.length;
      if (received > 100_000 && !sock.isPaused()) {
        sock.pause();
        resolve();
      }
    });
  });
  sock.write('GET /api/audit/export?format=ndjson HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
  await paused;
  const atPause = received;
  for (let i = 0; i < stallSeconds * 10; i++) {
    await sleep(100);
    peak = Math.max(peak, rssKb(pid) ?? 0);
  }
  const after = rssKb(pid);
  sock.destroy();
  await sleep(1000);
  const h = await fetch(`${s.url}/api/health`);
  await h.text();
  return {
    stall_seconds: stallSeconds,
    received_bytes: atPause,
    received_bytes_at_end: received,
    rss_before_mib: mib(before),
    rss_peak_during_stall_mib: mib(peak),
    rss_after_stall_mib: mib(after),
    status_after: h.status,
  };
}

/** `audit-verify --export` on the NDJSON file, with the export's checkpoint header. */
function verify(file, checkpointB64) {
  const cp = path.join(path.dirname(file), 'checkpoint.txt');
  fs.writeFileSync(cp, Buffer.from(checkpointB64, 'base64'));
  const build = spawnSync('cargo', ['build', '--quiet', '--bin', 'audit-verify'], { cwd: ROOT, stdio: 'inherit' });
  if (build.status !== 0) throw new Error('cargo build --bin audit-verify failed');
  const t0 = performance.now();
  const r = spawnSync(path.join(ROOT, 'target/debug/audit-verify'), ['--export', file, '--checkpoint', cp, '--unsigned'], { encoding: 'utf8' });
  return { status: r.status, seconds: +((performance.now() - t0) / 1000).toFixed(1), output: (r.stdout + r.stderr).trim() };
}

const result = { when: new Date().toISOString(), cpus: os.cpus().length, rows: ROWS, load_average_start: loadavg() };
console.log(`export: ${ROWS} entries; load average ${result.load_average_start.join(' ')}`);
const dir = fs.mkdtempSync(path.join(TMP, 'export-'));
let s = await start('ours-nolog', { args: ['--persist', dir, ...VARS] });
try {
  const r = await fetch(`${s.url}/api/increment`, { method: 'POST', headers: { 'idempotency-key': 'bench-export-create' } });
  if (r.status !== 200) throw new Error(`first change: ${r.status} ${await r.text()}`);
} finally {
  await stop(s);
}
const db = sqliteFile(dir);
let t0 = performance.now();
seed(db, ROWS);
result.seed_seconds = +((performance.now() - t0) / 1000).toFixed(1);
result.seed_file_bytes = fs.statSync(db).size;
console.log(`export: seeded ${ROWS} schema-3 entries in ${result.seed_seconds} s (${(result.seed_file_bytes / 1048576).toFixed(0)} MiB)`);

const exportsDir = fs.mkdtempSync(path.join(TMP, 'export-files-'));
s = await start('ours-nolog', { args: ['--persist', dir, ...VARS] });
try {
  // The upgrade: migrations 4 and 5 run before the object's first answer.
  t0 = performance.now();
  const cpuStart = cpuSeconds(s).workerd;
  const h = await fetch(`${s.url}/api/health`, { signal: AbortSignal.timeout(10 * 60_000) });
  if (h.status !== 200) throw new Error(`health after the upgrade: ${h.status} ${await h.text()}`);
  const health = await h.json();
  if (health.version !== ROWS) throw new Error(`the counter is at ${health.version}, wanted ${ROWS}`);
  result.migration_seconds = +((performance.now() - t0) / 1000).toFixed(1);
  // The backfill: the checkpoint answers 503 until every entry is hashed.
  const tBackfill = performance.now();
  const cpuBackfill = cpuSeconds(s).workerd;
  for (;;) {
    const c = await fetch(`${s.url}/api/audit/checkpoint`);
    const text = await c.text();
    if (c.status === 200) break;
    if (c.status !== 503) throw new Error(`checkpoint during the backfill: ${c.status} ${text}`);
    if (performance.now() - tBackfill > 30 * 60_000) throw new Error('the backfill did not finish in 30 minutes');
    await sleep(500);
  }
  const backfillSeconds = (performance.now() - tBackfill) / 1000;
  const backfillCpu = cpuSeconds(s).workerd - cpuBackfill;
  result.migration_cpu_seconds = +(cpuBackfill - cpuStart).toFixed(1);
  result.backfill_seconds = +backfillSeconds.toFixed(1);
  result.backfill_entries_per_s = Math.round(ROWS / backfillSeconds);
  result.backfill_cpu_us_per_entry = +((backfillCpu * 1e6) / ROWS).toFixed(1);
  console.log(`export: upgrade: migrations ${result.migration_seconds} s to the first answer; backfill ${result.backfill_seconds} s (${result.backfill_entries_per_s} entries/s, ${result.backfill_cpu_us_per_entry} µs workerd CPU per entry)`);
  await sleep(2000); // let the runtime settle before the baseline

  const ndjsonFile = path.join(exportsDir, 'audit.ndjson');
  const nd = await streamExport(s, 'ndjson', ndjsonFile);
  console.log(`export: ndjson ${nd.rows_per_s} rows/s, ${(nd.bytes / 1048576).toFixed(0)} MiB in ${nd.seconds} s; workerd RSS ${nd.rss_before_mib} MiB before, peak ${nd.rss_peak_mib}, ${nd.rss_after_mib} after; growth over the last three quarters ${nd.rss_growth_last_three_quarters_mib} MiB`);
  const csv = await streamExport(s, 'csv', null);
  console.log(`export: csv ${csv.rows_per_s} rows/s, ${(csv.bytes / 1048576).toFixed(0)} MiB in ${csv.seconds} s; workerd RSS ${csv.rss_before_mib} MiB before, peak ${csv.rss_peak_mib}, ${csv.rss_after_mib} after; growth over the last three quarters ${csv.rss_growth_last_three_quarters_mib} MiB`);
  // The same NDJSON export again: memory that grew with the rows exported would climb again.
  const again = await streamExport(s, 'ndjson', null);
  console.log(`export: ndjson again ${again.rows_per_s} rows/s; workerd RSS ${again.rss_before_mib} MiB before, peak ${again.rss_peak_mib}, ${again.rss_after_mib} after`);
  const stalled = await stalledReader(s);
  console.log(`export: a reader that stops after ${stalled.received_bytes} bytes: workerd RSS ${stalled.rss_before_mib} MiB before, ${stalled.rss_after_stall_mib} after ${stalled.stall_seconds} s stalled (${stalled.received_bytes_at_end} bytes delivered by then)`);

  // Completeness.
  const problems = [];
  if (nd.tree_size !== ROWS || nd.lines !== ROWS) problems.push(`ndjson: tree size ${nd.tree_size}, ${nd.lines} lines, wanted ${ROWS}`);
  if (!nd.first_bytes.startsWith('{"amount":2,') || !nd.last_bytes.includes(`"version":${ROWS}}\n`)) problems.push(`ndjson: unexpected first or last line`);
  if (csv.tree_size !== ROWS || csv.lines !== ROWS + 1) problems.push(`csv: tree size ${csv.tree_size}, ${csv.lines} lines, wanted ${ROWS} and a header`);
  if (!csv.first_bytes.startsWith('version,operation,amount,previous_value,value,request_id,at\r\n1,increment,2,0,2,seed-1,')) problems.push(`csv: unexpected start ${JSON.stringify(csv.first_bytes.slice(0, 120))}`);
  if (!csv.last_bytes.includes(`\r\n${ROWS},`)) problems.push('csv: the last row is not the last version');
  if (again.lines !== ROWS) problems.push(`ndjson again: ${again.lines} lines`);
  if (stalled.status_after !== 200) problems.push(`health after the stalled reader: ${stalled.status_after}`);
  result.ndjson = nd;
  result.csv = csv;
  result.ndjson_again = again;
  result.stalled = stalled;
  await stop(s);

  // Merkle rows: one per entry; their bytes.
  const [[rows, bytes, auditRows]] = sql(db, 'SELECT count(*), sum(length(hashes)), (SELECT count(*) FROM audit) FROM merkle');
  result.merkle_rows_per_entry = +(rows / auditRows).toFixed(3);
  result.merkle_bytes_per_entry = +(bytes / auditRows).toFixed(1);
  result.database_bytes = fs.statSync(db).size;
  console.log(`export: ${rows} Merkle rows for ${auditRows} entries (${result.merkle_rows_per_entry} per entry, ${result.merkle_bytes_per_entry} hash bytes each)`);

  const v = verify(ndjsonFile, nd.checkpoint);
  result.verify = v;
  console.log(`export: audit-verify exit ${v.status} in ${v.seconds} s: ${v.output.split('\n').slice(-2).join(' / ')}`);
  if (v.status !== 0) problems.push(`audit-verify failed: ${v.output}`);
  result.problems = problems;
  result.load_average_end = loadavg();
  fs.mkdirSync(path.join(ROOT, 'bench/results'), { recursive: true });
  fs.writeFileSync(path.join(ROOT, 'bench/results/export.json'), JSON.stringify(result, null, 2) + '\n');
  console.log('export: wrote bench/results/export.json');
  if (problems.length) {
    console.error(`export: PROBLEMS:\n${problems.join('\n')}`);
    process.exitCode = 3;
  }
} finally {
  await stop(s);
  fs.rmSync(exportsDir, { recursive: true, force: true });
  fs.rmSync(dir, { recursive: true, force: true });
}
