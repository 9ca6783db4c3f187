# One command to run the server, one to pass the tests (see README.md).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install run test lint chromium clean

$(STAMP): pyproject.toml web/package-lock.json tests/oidc/package-lock.json
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	cd web && npm ci --no-audit --no-fund --loglevel=error
	cd tests/oidc && npm ci --no-audit --no-fund --loglevel=error
	touch $(STAMP)

install: $(STAMP)

## Run a node on the embedded default (SQLite file in ./var, in-memory queue) with demo users.
run: install
	$(BIN)/vtax serve --demo

## Debian's Chromium for the browser tests (skipped where it is already installed).
chromium:
	@command -v chromium >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq chromium)

## The whole suite: unit, integration (SQLite and PostgreSQL), browser end-to-end.
test: install chromium
	$(BIN)/pytest

## Static checks (CI runs them before the tests): ruff, ruff format, mypy (vtax, signaling,
## tests), the layering contracts of pyproject.toml, and the generated contract files.
lint: install
	$(BIN)/ruff check vtax signaling tests
	$(BIN)/ruff format --check vtax signaling tests
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/python -m vtax.contract.generate --check

clean:
	rm -rf $(VENV) web/node_modules var .pytest_cache
