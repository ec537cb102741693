#!/bin/sh
# Smoke test of a running deployment: health, a read, a keyed change and its byte-identical
# replay, a socket that receives that change, then a keyed change back (the counter ends where it
# was, give or take everyone else's clicks). Exits non-zero on any failure and never runs longer
# than SMOKE_TIMEOUT seconds (default 60).
#
#   sh scripts/smoke.sh https://number-acidizer-staging.example.workers.dev
#   SMOKE_VERSION_ID=<version id> sh scripts/smoke.sh https://…   # pin one version during a gradual rollout
#
# The deploy pipeline (.github/workflows/deploy.yml) runs it after every step; make test runs it
# against a local server (scripts/smoke-local.sh).
set -eu
cd "$(dirname "$0")/.."
[ $# -eq 1 ] || { echo "usage: $0 URL" >&2; exit 2; }
exec timeout --kill-after=5 "${SMOKE_TIMEOUT:-60}" node scripts/smoke.mjs "$1"
