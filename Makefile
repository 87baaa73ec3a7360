# The two commands: `make run` (the whole system) and `make test` (every test).
# Each installs what it needs into .venv first.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: run test lint install browser-deps tool-deps status dead-letters erase sirene-import bench clean

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

# The gateway's nginx.conf is run in front of a recording backend (tests/integration/test_compose.py)
# and wrk replays requests (tests/integration/test_bench_smoke.py): Debian's packages, installed
# when missing. Debian's nginx starts a server on port 80 when it is installed: a policy-rc.d that
# refuses every start (exit 101) is in place during the install (unless the machine has one, as
# Docker images do), and the service is left disabled at boot.
TEST_TOOLS := nginx wrk

tool-deps:
	@missing=; for tool in $(TEST_TOOLS); do \
	  command -v $$tool >/dev/null 2>&1 || [ -x /usr/sbin/$$tool ] || missing="$$missing $$tool"; \
	done; \
	[ -z "$$missing" ] || { \
	  echo "Installing Debian's$$missing for the tests (no server started)"; \
	  $(SUDO) sh -c ' \
	    policy=/usr/sbin/policy-rc.d; placed=; \
	    if [ ! -e $$policy ]; then printf "#!/bin/sh\nexit 101\n" >$$policy && chmod 755 $$policy && placed=1; fi; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$$@"; \
	    status=$$?; [ -z "$$placed" ] || rm -f $$policy; \
	    case " $$* " in *" nginx "*) \
	      { systemctl disable --quiet nginx || update-rc.d nginx disable; } >/dev/null 2>&1;; esac; \
	    exit $$status' sh $$missing; }

$(AXE): tests/e2e/package.json tests/e2e/package-lock.json
	cd tests/e2e && npm ci --silent --no-audit --no-fund
	touch $(AXE)

status: $(STAMP)
	$(PY) -m system.status $(ARGS)

dead-letters: $(STAMP)
	$(PY) -m system.dead_letters $(or $(ARGS),list)

# An account erased at its holder's request (RGPD art. 17), as its deactivation from « Mon compte »:
# make erase ARGS="--login-email x@example.fr" (or --account-id, --registration-id).
erase: $(STAMP)
	$(PY) -m system.erase $(ARGS)

# INSEE's SIRENE stock files (SIRENE_DIR) into the store every structure process reads (SIRENE_DB).
sirene-import: $(STAMP)
	$(PY) -m services.structure.sirene.stock_import $(ARGS)

# Benchmarks (not part of `make test`): run them on a quiet machine; results go to docs/benchmarks.md.
bench: $(STAMP)
	$(PY) -m bench $(ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .

test: $(STAMP) lint browser-deps tool-deps
	$(VENV)/bin/pytest

clean:
	rm -rf $(VENV) var test-artifacts .pytest_cache .ruff_cache tests/e2e/node_modules
