# The two commands: `make run` (the whole system) and `make test` (every test).
# Each installs what it needs into .venv first.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: run test lint install browser-deps status dead-letters bench clean

# Browser tests drive Debian's Chromium with Playwright and check pages with axe-core (npm).
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
AXE    := tests/e2e/node_modules/axe-core/axe.min.js

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(PY) -m system.launcher

browser-deps: $(AXE)
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "Installing Debian's chromium for the browser tests"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium; }

$(AXE): tests/e2e/package.json tests/e2e/package-lock.json
	cd tests/e2e && npm ci --silent --no-audit --no-fund
	touch $(AXE)

status: $(STAMP)
	$(PY) -m system.status $(ARGS)

dead-letters: $(STAMP)
	$(PY) -m system.dead_letters $(or $(ARGS),list)

# Benchmarks (not part of `make test`): run them on a quiet machine; results go to docs/benchmarks.md.
bench: $(STAMP)
	$(PY) -m bench $(ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .

test: $(STAMP) lint browser-deps
	$(VENV)/bin/pytest

clean:
	rm -rf $(VENV) var test-artifacts .pytest_cache .ruff_cache tests/e2e/node_modules
