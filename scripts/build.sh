#!/bin/sh
# Builds the Worker with worker-build into build/, using only pinned local tools: wasm-bindgen
# from `cargo install`, wasm-opt and esbuild from node_modules. Nothing is downloaded.
#   build/index.js, build/index_bg.wasm   worker-build's module: the Rust fetch handler and the
#                                         Durable Object classes Counter and Relay
#   build/entry.js                        wrangler.toml's `main` (src/entry.js): the handler as a
#                                         plain module worker, Counter as an RPC target
# Skips the build when its output is newer than every input, so repeated calls are cheap
# (`wrangler dev` runs this at start-up); concurrent runs take turns (flock).
set -eu
cd "$(dirname "$0")/.."
mkdir -p build

exec 9>build/.lock
flock 9

if [ -f build/.stamp ] && [ -f build/index.js ] && [ -f build/entry.js ] \
  && [ -z "$(find src Cargo.toml Cargo.lock scripts/build.sh -newer build/.stamp -print 2>/dev/null | head -n 1)" ]; then
  echo "build/ is current; skipping the Wasm build"
  exit 0
fi

sh scripts/setup.sh build
PATH="$HOME/.cargo/bin:$PATH"
export WASM_BINDGEN_BIN="$(command -v wasm-bindgen)"
export WASM_OPT_BIN="$PWD/scripts/wasm-opt.sh"
export ESBUILD_BIN="$PWD/node_modules/.bin/esbuild"
# Outputs of the build from when the Worker was two scripts would only mislead.
rm -rf build/edge build/objects
worker-build --release --out-dir build
cp src/entry.js build/entry.js
touch build/.stamp
