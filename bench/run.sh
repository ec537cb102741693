#!/bin/sh
# `make bench`: measures our Worker (as configured, and without its per-request log line) beside
# a no-op Worker (the runtime's ceiling), the object floor (every request through one Durable
# Object doing the least it can) and the same counter written in JavaScript, then writes
# BENCHMARKS.md and bench/results/latest.json.
# Its HTTP, capacity, cold-start and fan-out runs take about 15 minutes with bench/bench.mjs's
# default settings (BENCHMARKS.md heads with the settings it was made with), plus the storage benchmark (bench/storage.mjs: 200,000 changes
# twice and a 50,000-entry backlog; 20-40 minutes on 2 shared cores) and the ledger benchmark
# (bench/export.mjs: a 1,000,000-entry trail upgraded and exported; 2-4 minutes). Settings: see bench/bench.mjs (BENCH_ROUNDS, BENCH_DURATION,
# BENCH_COLD_RUNS, BENCH_FANOUT, BENCH_FANOUT_CHANGES) and BENCH_TIMEOUT (seconds, whole run).
#
# It reports figures and never judges speed; it fails loudly when something breaks (a tool
# missing, a server that does not start, a counter that loses or duplicates a change), and it
# never hangs: every wait below and in the scripts it runs has a deadline.
set -eu
cd "$(dirname "$0")/.."

say() { echo "bench: $*"; }
die() { echo "bench: ERROR: $*" >&2; exit 1; }

# The load generator. Only installed when missing; waits for another apt run to finish first.
if ! command -v wrk >/dev/null 2>&1; then
  say "installing wrk"
  if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
  $sudo apt-get -o DPkg::Lock::Timeout=600 install -y wrk >/dev/null \
    || { $sudo apt-get -o DPkg::Lock::Timeout=600 update >/dev/null \
      && $sudo apt-get -o DPkg::Lock::Timeout=600 install -y wrk >/dev/null; } \
    || die "could not install wrk (apt-get install -y wrk)"
  command -v wrk >/dev/null 2>&1 || die "wrk is still not on PATH after installing it"
fi
command -v node >/dev/null 2>&1 || die "node is not installed"
[ -f build/entry.js ] || die "build/ is missing: run 'make bench', which builds first"
[ -d node_modules/miniflare ] && [ -d node_modules/ws ] || die "node_modules is missing miniflare or ws: run 'npm ci'"

# 10,000 WebSockets need as many descriptors in workerd and in the client processes; raise the
# soft limit to the hard one (all we are allowed without privileges).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
say "open-file limit $(ulimit -n)"

# Every server the run starts is a process group listed in $BENCH_PGIDS. Whatever ends this
# script (success, failure, Ctrl-C, the timeout), the trap kills what is left of those groups:
# only processes that carry this run's unique BENCH_TMP in their environment, so a recycled
# process id can never hit someone else's process.
BENCH_TMP=$(mktemp -d /tmp/bench.XXXXXX)
BENCH_PGIDS="$BENCH_TMP/pgids"
: >"$BENCH_PGIDS"
export BENCH_TMP BENCH_PGIDS
cleanup() {
  status=$?
  trap - EXIT INT TERM
  for pgid in $(cat "$BENCH_PGIDS" 2>/dev/null); do
    for pid in $(pgrep -g "$pgid" 2>/dev/null || true); do
      if grep -qa "BENCH_TMP=$BENCH_TMP" "/proc/$pid/environ" 2>/dev/null; then
        kill -KILL "$pid" 2>/dev/null || true
      fi
    done
  done
  rm -rf "$BENCH_TMP"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The driver exits 0 when all is well, 3 when it measured everything but found a correctness
# problem (the report is still written, then this fails), anything else when it broke.
status=0
timeout --kill-after=30 "${BENCH_TIMEOUT:-2400}" node bench/bench.mjs || status=$?
# A one-client flood: what reaches the counter, and the other clients' latency.
if [ "$status" -eq 0 ] || [ "$status" -eq 3 ]; then
  timeout --kill-after=30 300 node bench/flood.mjs || die "the flood benchmark failed; see the messages above"
fi
# The storage benchmark (the audit archive): bytes per change, archival throughput, latency
# during archival. Its own results file; the report includes it.
if [ "$status" -eq 0 ] || [ "$status" -eq 3 ]; then
  timeout --kill-after=30 "${BENCH_STORAGE_TIMEOUT:-3600}" node bench/storage.mjs \
    || die "the storage benchmark failed; see the messages above"
  # The ledger benchmark: a 1,000,000-entry trail's upgrade to the Merkle tree and its streamed
  # export (memory, rows/s, audit-verify on the file). Exit 3: measured, but the export was
  # short or did not verify.
  export_status=0
  timeout --kill-after=30 "${BENCH_EXPORT_TIMEOUT:-1800}" node bench/export.mjs || export_status=$?
  case "$export_status" in
    0) ;;
    3) status=3 ;;
    *) die "the ledger benchmark failed (exit $export_status); see the messages above" ;;
  esac
fi
# The JSON builder against serde derive (native, a few seconds); the report includes it.
if [ "$status" -eq 0 ] || [ "$status" -eq 3 ]; then
  cargo run -q --release --example json_bench >bench/results/json.txt \
    || die "the JSON benchmark failed; see the messages above"
fi
case "$status" in
  0 | 3) node bench/report.mjs ;;
  124) die "the benchmark did not finish within ${BENCH_TIMEOUT:-2400} s" ;;
  *) die "the benchmark failed (exit $status); see the messages above" ;;
esac
[ "$status" -eq 0 ] || die "correctness problems found (listed above and in BENCHMARKS.md)"
say "done: BENCHMARKS.md"
