# One command to run the server, one to pass the tests (see README.md).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install run test lint lint-py lint-web test-web chromium clean

# The pages (web/, docs/frontend.md): `npm ci` with the Python install, then one Vite build of
# every entry in web/pages into web/dist, redone when a source or the toolchain changes.
WEB_STAMP := web/dist/.built
WEB_SRC   := $(shell find web/src web/pages -type f 2>/dev/null) \
             web/package-lock.json web/vite.config.ts web/tsconfig.json

$(STAMP): pyproject.toml web/package-lock.json
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	cd web && npm ci --no-audit --no-fund --loglevel=error
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

## The whole suite: the pages' unit tests (Vitest), then unit, integration (SQLite and
## PostgreSQL) and browser end-to-end (pytest).
test: install chromium test-web
	$(BIN)/pytest

## Vitest: stores, composables and the call core of web/src.
test-web: install
	cd web && npm test --silent

lint: install lint-py lint-web

lint-py: install
	$(BIN)/ruff check vtax signaling tests
	$(BIN)/ruff format --check vtax signaling tests
	$(BIN)/mypy

## eslint and vue-tsc (strict TypeScript) over web/src and web/tests.
lint-web: $(STAMP)
	cd web && npx --no-install eslint src tests
	cd web && npx --no-install vue-tsc --noEmit -p tsconfig.json

clean:
	rm -rf $(VENV) web/node_modules web/dist var .pytest_cache
