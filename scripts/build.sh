#!/bin/sh
# Builds the Worker (build/index.js + Wasm) with worker-build, using only pinned local tools:
# wasm-bindgen from `cargo install`, wasm-opt and esbuild from node_modules. Nothing is downloaded.
# Skips the build when build/ is newer than every input, so repeated calls are cheap.
set -eu
cd "$(dirname "$0")/.."

stamp=build/.stamp
if [ -f "$stamp" ] && [ -f build/index.js ] \
  && [ -z "$(find src Cargo.toml Cargo.lock -newer "$stamp" -print 2>/dev/null | head -n 1)" ]; then
  echo "build/ is current; skipping the Wasm build"
  exit 0
fi

sh scripts/setup.sh build
PATH="$HOME/.cargo/bin:$PATH"
export WASM_BINDGEN_BIN="$(command -v wasm-bindgen)"
export WASM_OPT_BIN="$PWD/scripts/wasm-opt.sh"
export ESBUILD_BIN="$PWD/node_modules/.bin/esbuild"
worker-build --release
touch "$stamp"
