# One command to run the server, one to pass the tests (see README.md).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install run test test-fast test-web lint lint-py lint-web chromium stack-deps clean

# The pages (web/, docs/frontend.md): `npm ci` with the Python install, then one Vite build of
# every entry in web/pages into web/dist, redone when a source or the toolchain changes.
WEB_STAMP := web/dist/.built
WEB_SRC   := $(shell find web/src web/pages -type f 2>/dev/null) \
             web/package-lock.json web/vite.config.ts web/tsconfig.json

$(STAMP): pyproject.toml web/package-lock.json tests/oidc/package-lock.json
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	cd web && npm ci --no-audit --no-fund --loglevel=error
	cd tests/oidc && npm ci --no-audit --no-fund --loglevel=error
	touch $(STAMP)

$(WEB_STAMP): $(STAMP) $(WEB_SRC)
	cd web && npm run build --silent
	touch $(WEB_STAMP)

install: $(STAMP) $(WEB_STAMP)

## Run a node on the embedded default (SQLite file in ./var, in-memory queue) with demo users.
run: install
	$(BIN)/vtax serve --demo

## Debian's Chromium for the browser tests (skipped where it is already installed).
chromium:
	@command -v chromium >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq chromium)

## nginx and coturn (Debian packages) for the stack runner and tests/stack (deploy/stack.py);
## prometheus for promtool (the alert rules' tests, deploy/prometheus/); nftables for the
## impaired link between test hosts (tests/e2e/test_impairment.py).
stack-deps:
	@(command -v nginx && command -v turnserver && command -v promtool && command -v nft) >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq nginx coturn prometheus nftables)

# pytest-xdist workers (`auto`: one per core); the browser and multi-node tests run on one
# worker, one after the other (tests/conftest.py XDIST_GROUPS).
JOBS ?= auto
XDIST := -n $(JOBS) --dist loadgroup

## The whole suite: the pages' unit tests (Vitest), then unit, integration (SQLite and
## PostgreSQL), browser end-to-end, multi-node, the long stress and simulation runs (pytest).
## What CI runs.
test: install chromium stack-deps test-web
	$(BIN)/pytest $(XDIST)

## Everything but the browser, multi-node and slow tests (SQLite and PostgreSQL both), in
## parallel: the lane to run while working (docs/benchmarks.md).
test-fast: install
	$(BIN)/pytest $(XDIST) -m "not e2e and not multinode and not stack and not slow"

## Vitest: stores, composables and the call core of web/src.
test-web: install
	cd web && npm test --silent

## Static checks (CI runs them before the tests): the Python side (ruff, ruff format, mypy,
## the layering contracts of pyproject.toml, the generated contract files) and the pages'
## (eslint, vue-tsc).
lint: install lint-py lint-web

lint-py: install
	$(BIN)/ruff check vtax signaling tests deploy
	$(BIN)/ruff format --check vtax signaling tests deploy
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/python -m vtax.contract.generate --check

## eslint and vue-tsc (strict TypeScript) over web/src and web/tests.
lint-web: $(STAMP)
	cd web && npx --no-install eslint src tests
	cd web && npx --no-install vue-tsc --noEmit -p tsconfig.json

clean:
	rm -rf $(VENV) web/node_modules web/dist var .pytest_cache
