#!/bin/sh
# Runs one of the checked-in queries (ops/queries/*.sql) against the Workers Analytics Engine SQL
# API and prints the result as JSON. Production's dataset by default; --env staging reads the
# staging dataset instead.
#
#   CLOUDFLARE_ACCOUNT_ID=… CLOUDFLARE_API_TOKEN=… ops/query.sh [--env staging] ops/queries/NAME.sql
#
# The token needs "Account Analytics: Read". docs/OPERATIONS.md says which query answers what.
set -eu
dataset=number_acidizer_requests
if [ "${1:-}" = "--env" ]; then
  case "${2:-}" in
    production) ;;
    staging) dataset=number_acidizer_requests_staging ;;
    *) echo "usage: $0 [--env staging|production] FILE.sql" >&2; exit 2 ;;
  esac
  shift 2
fi
[ $# -eq 1 ] && [ -f "$1" ] || { echo "usage: $0 [--env staging|production] FILE.sql" >&2; exit 2; }
: "${CLOUDFLARE_ACCOUNT_ID:?set CLOUDFLARE_ACCOUNT_ID}" "${CLOUDFLARE_API_TOKEN:?set CLOUDFLARE_API_TOKEN}"
# Comment lines go; the dataset name is swapped for the environment's; FORMAT JSON is appended.
query="$(grep -v '^[[:space:]]*--' "$1" | sed "s/\bnumber_acidizer_requests\b/$dataset/g") FORMAT JSON"
exec curl --silent --show-error --fail-with-body --max-time 60 \
  "https://api.cloudflare.com/client/v4/accounts/$CLOUDFLARE_ACCOUNT_ID/analytics_engine/sql" \
  --header "Authorization: Bearer $CLOUDFLARE_API_TOKEN" \
  --data-binary "$query"
