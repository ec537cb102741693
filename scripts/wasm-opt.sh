#!/bin/sh
# wasm-opt as worker-build calls it, minus `--debuginfo`: the Worker's module ships without its
# function-name section (~88 KB raw, ~27 KB gzipped of the module). Panics are still logged with
# their message (console_error_panic_hook); only stack frames lose their Rust names.
set -eu
wasm_opt="$(dirname "$0")/../node_modules/.bin/wasm-opt"
for arg in "$@"; do
  shift
  [ "$arg" = "--debuginfo" ] || set -- "$@" "$arg"
done
exec "$wasm_opt" "$@"
