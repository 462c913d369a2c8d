# offerloop — local development commands (see README.md). Every target installs what it needs.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
BENCH  ?=
PYTEST_ARGS ?=

.PHONY: help install run up down test bench clean

help: ## list the commands
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

$(VENV)/.installed: requirements.txt requirements-dev.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || \
	  { echo "offerloop: Python >= 3.11 is needed as '$(PYTHON)' (set PYTHON=... to another interpreter)" >&2; exit 1; }
	@echo "installing Python packages into $(VENV)…"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

node_modules/.installed: package.json package-lock.json
	@command -v node >/dev/null && command -v npm >/dev/null || \
	  { echo "offerloop: Node.js >= 20 and npm are needed for Azurite and the Cosmos DB server; install them (Debian/Ubuntu: apt-get install nodejs npm)" >&2; exit 1; }
	@node -e 'process.exit(+process.versions.node.split(".")[0] < 20 ? 1 : 0)' || \
	  { echo "offerloop: Node.js >= 20 is needed, found $$(node --version)" >&2; exit 1; }
	@echo "installing the npm emulators (Azurite, Cosmos DB server)…"
	@npm ci --no-audit --no-fund --loglevel=error
	@touch $@

install: $(VENV)/.installed node_modules/.installed ## install Python and npm packages and redis-server
	@bash local/install-redis.sh

run: install ## start everything in the foreground; Ctrl-C stops it
	@$(PY) -m local run

up: install ## start everything in the background
	@$(PY) -m local up

down: ## stop exactly what `make up` started
	@if [ -x $(PY) ]; then $(PY) -m local down; else echo "offerloop: nothing to stop (not installed)"; fi

test: install ## the whole test suite (starts and stops its own stack on free ports)
	@bash local/install-chromium.sh
	@bash local/worker-venv.sh
	@PYTHON=$(PYTHON) bash infra/scripts/infra-venv.sh
	@$(PY) -m pytest $(PYTEST_ARGS)

bench: install ## benchmarks; BENCH=<name> runs one
	@bash local/install-chromium.sh
	@$(PY) -m bench $(BENCH)

clean: down ## stop and remove local state (logs, data)
	rm -rf .local
