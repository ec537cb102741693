#!/bin/sh
# `make soak`: the fault storm of tests/soak.rs for SOAK_SECONDS (600 by default): 64 keyed
# clients, readers of both consistencies and 208 sockets through the relays while the runtime is
# SIGKILLed, relays reset, the counter restarted, the edge panics, R2 fails during archival and
# one address floods past the rate limit. It fails on anything lost, doubled or out of order and
# writes its summary to bench/results/soak.json (SOAK_RESULTS to put it elsewhere).
# SOAK_SEED=<n> repeats a run's random choices. Never hangs: the test bounds every wait, and the
# whole run is under `timeout` (the storm, plus 20 minutes for start-up and the checks).
set -eu
cd "$(dirname "$0")/.."

seconds="${SOAK_SECONDS:-600}"
case "$seconds" in
  ''|*[!0-9]*) echo "soak: SOAK_SECONDS must be a whole number of seconds, not '$seconds'" >&2; exit 64 ;;
esac
export SOAK_SECONDS="$seconds"
export SOAK_RESULTS="${SOAK_RESULTS:-bench/results/soak.json}"
# 208 sockets and the server's side of them, with room to spare.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

echo "soak: ${SOAK_SECONDS} s${SOAK_SEED:+, seed $SOAK_SEED}; summary to $SOAK_RESULTS"
timeout $((SOAK_SECONDS + 1200)) cargo test --test soak -- --nocapture --test-threads 1
