#!/bin/sh
# Builds the two Worker scripts with worker-build, using only pinned local tools: wasm-bindgen
# from `cargo install`, wasm-opt and esbuild from node_modules. Nothing is downloaded.
#   build/edge/    the edge (the Worker's fetch handler): cargo feature `edge`, wrangler.toml;
#                  its entry is entry.js (src/edge.js: the handler as a plain module worker)
#   build/objects/ the Durable Object classes Counter and Relay: feature `objects`, objects.toml;
#                  its entry is entry.js (src/objects.js: the classes as RPC targets)
# One crate, two Wasm modules: a Cloudflare script is one module, and each stays under 200 KB
# gzipped only on its own (README, "Two Worker scripts").
# Skips a build when its output is newer than every input, so repeated calls are cheap; `wrangler
# dev` with both configs runs this twice at start-up, so runs take turns (flock).
set -eu
cd "$(dirname "$0")/.."
mkdir -p build

exec 9>build/.lock
flock 9

current() {
  [ -f "build/$1/.stamp" ] && [ -f "build/$1/index.js" ] \
    && [ -f "build/$1/entry.js" ] \
    && [ -z "$(find src Cargo.toml Cargo.lock scripts/build.sh -newer "build/$1/.stamp" -print 2>/dev/null | head -n 1)" ]
}

if current edge && current objects; then
  echo "build/edge and build/objects are current; skipping the Wasm build"
  exit 0
fi

sh scripts/setup.sh build
PATH="$HOME/.cargo/bin:$PATH"
export WASM_BINDGEN_BIN="$(command -v wasm-bindgen)"
export WASM_OPT_BIN="$PWD/scripts/wasm-opt.sh"
export ESBUILD_BIN="$PWD/node_modules/.bin/esbuild"
for script in edge objects; do
  if current "$script"; then
    echo "build/$script is current"
    continue
  fi
  worker-build --release --out-dir "build/$script" -- --no-default-features --features "$script"
  cp "src/$script.js" "build/$script/entry.js"
  touch "build/$script/.stamp"
done
