#!/bin/sh
# Lighthouse scores of the web app on a fresh local server (`make lighthouse`). A figure, not a
# test: Lighthouse's performance score depends on the machine. Uses Debian's chromium and
# lighthouse 12.2.3 (the last release that runs on Node 20), fetched by npx from the npm
# registry on first use.
set -eu
cd "$(dirname "$0")/.."
PATH="$HOME/.cargo/bin:$PATH"
export WRANGLER_SEND_METRICS=false WRANGLER_HIDE_BANNER=true CHROME_PATH=/usr/bin/chromium

state=$(mktemp -d)
port=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
setsid node_modules/.bin/wrangler dev --ip 127.0.0.1 --port "$port" --persist-to "$state" \
  --show-interactive-dev-session=false > "$state/server.log" 2>&1 &
pgid=$!
trap 'kill -TERM -$pgid 2>/dev/null || true; sleep 1; kill -KILL -$pgid 2>/dev/null || true; rm -rf "$state"' EXIT

i=0
until curl -fs -o /dev/null "http://127.0.0.1:$port/api/health"; do
  i=$((i + 1))
  [ "$i" -lt 120 ] || { echo "the server did not start:"; tail -20 "$state/server.log"; exit 1; }
  sleep 0.5
done
# Some history, so the activity list and the chart have content.
for n in 1 2 3 4 5; do curl -fs -o /dev/null -X POST "http://127.0.0.1:$port/api/increment"; done

timeout 300 npx --yes lighthouse@12.2.3 "http://127.0.0.1:$port/" \
  --only-categories=performance,accessibility,best-practices,seo \
  --output=json --output-path="$state/report.json" --quiet \
  --chrome-flags="--headless=new --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking --disable-component-update --disable-sync"
node -e '
const r = require(process.argv[1]);
const scores = Object.values(r.categories).map((c) => `${c.title} ${Math.round(c.score * 100)}`);
console.log(`lighthouse ${r.lighthouseVersion}: ${scores.join(", ")}`);
for (const id of ["first-contentful-paint", "largest-contentful-paint", "total-blocking-time", "cumulative-layout-shift", "total-byte-weight"]) {
  console.log(`  ${r.audits[id].title}: ${r.audits[id].displayValue}`);
}' "$state/report.json"
