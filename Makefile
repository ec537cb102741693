# Number Acidizer: the two commands are `make dev` and `make test`.
# Both install what they need first (scripts/setup.sh) and skip what is already installed.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
export PATH := $(HOME)/.cargo/bin:$(PATH)
export WRANGLER_SEND_METRICS := false
export CLOUDFLARE_CF_FETCH_ENABLED := false
export WRANGLER_HIDE_BANNER := true
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD := 1

PORT ?= 8787
STATE ?= .wrangler/state

.PHONY: dev test build setup setup-build lint unit web-unit e2e ops web-e2e smoke bench soak lighthouse screenshots clean

## dev: run the service at http://127.0.0.1:$(PORT) with state persisted in $(STATE): plain
## `wrangler dev` (add any var with `make dev ARGS="--var NAME:VALUE"`).
dev: setup-build
	node_modules/.bin/wrangler dev --ip 127.0.0.1 --port $(PORT) --persist-to $(STATE) $(ARGS)

## test: every test: formatting, lints, unit tests, end-to-end tests against the real runtime
test:
	sh scripts/setup.sh test
	$(MAKE) --no-print-directory lint
	$(MAKE) --no-print-directory unit
	$(MAKE) --no-print-directory web-unit
	$(MAKE) --no-print-directory build
	$(MAKE) --no-print-directory e2e
	$(MAKE) --no-print-directory ops
	$(MAKE) --no-print-directory web-e2e
	@echo "make test: all passed"

build:
	sh scripts/build.sh

setup:
	sh scripts/setup.sh test

setup-build:
	sh scripts/setup.sh build

lint:
	cargo fmt --check
	cargo clippy --all-targets -- -D warnings
	cargo clippy --lib --target wasm32-unknown-unknown --release -- -D warnings

unit:
	cargo test --lib

# The web app's logic modules (sender, live connection, reconciliation), without a browser.
web-unit:
	node --test tests/web/ tests/docs/

# End-to-end suites start their own servers; `timeout` makes a hang a loud failure. The soak
# (tests/soak.rs) runs its 60 s fault storm here, about two minutes with its checks.
e2e:
	timeout 1500 cargo test --tests -- --test-threads 4

# Operations: the workflows (actionlint, the workflow schema), the deploy bundle in both
# environments (wrangler deploy --dry-run: no account), the runbook's queries, request metrics and
# GET /api/metrics under Miniflare, and the smoke test against a local server.
ops: build
	rm -rf target/deploy
	timeout 120 .venv/bin/actionlint .github/workflows/ci.yml .github/workflows/deploy.yml
	timeout 120 .venv/bin/check-jsonschema --builtin-schema vendor.github-workflows .github/workflows/ci.yml .github/workflows/deploy.yml
	timeout 120 .venv/bin/check-jsonschema --builtin-schema vendor.github-actions .github/actions/build/action.yml
	timeout 120 .venv/bin/python -m unittest tests/ops/queries_test.py
	timeout 300 node_modules/.bin/wrangler deploy --dry-run --outdir target/deploy/default
	for env in staging production; do \
	  timeout 300 node_modules/.bin/wrangler deploy --dry-run --env $$env --outdir target/deploy/$$env; \
	done
	timeout 300 node --test tests/ops/

# The smoke test against any deployment: make smoke URL=https://…
smoke:
	sh scripts/smoke.sh "$(URL)"

# The web app, and the embeddable counter on a page of another origin, in a real browser
# (Debian's chromium driven by playwright-core) against their own local servers.
web-e2e: build
	timeout 300 node --test tests/web/browser.e2e.mjs
	timeout 300 node --test tests/web/embed.e2e.mjs

bench: build
	sh bench/run.sh

# The fault storm (tests/soak.rs) for $(SOAK_SECONDS) s, its summary in bench/results/soak.json:
# make soak SOAK_SECONDS=300. make test runs the same test for 60 s (in make e2e).
SOAK_SECONDS ?= 600
soak: build
	SOAK_SECONDS=$(SOAK_SECONDS) sh bench/soak.sh

# Lighthouse scores of the app on a local server (a figure, not a test).
lighthouse: build
	sh bench/lighthouse.sh

# docs/screenshots/*.png, from a local server with some history.
screenshots: build
	node tests/web/screenshots.mjs

clean:
	rm -rf build target/e2e
