# Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000
WORKERS ?= 2
# Extra pytest arguments, e.g. `make test PYTEST_ARGS="-k sign_in"` (CI adds its own).
PYTEST_ARGS ?=
# pytest-xdist workers: one per core. `make test TEST_WORKERS=0` runs in one process.
TEST_WORKERS ?= auto
export FLASK_APP := app

.PHONY: run test lint test-services setup dev-setup db demo clean bench proof load dist

# Running needs requirements.txt only; the tests, the load run and the benchmarks add
# requirements-dev.txt (pytest, Playwright, locust, ...) to the same environment.
RUNTIME := $(VENV)/.runtime-installed
DEV := $(VENV)/.dev-installed

$(RUNTIME): requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(DEV): $(RUNTIME) requirements-dev.txt
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@

# Runtime front-end packages only; the dev dependencies (Lighthouse, vnu-jar) come with `make test` and `make bench`.
static/vendor/htmx.min.js: package.json package-lock.json
	npm ci --omit=dev --no-audit --no-fund --loglevel=error
	mkdir -p static/vendor
	cp node_modules/htmx.org/dist/htmx.min.js static/vendor/htmx.min.js

# Minified, Brotli and gzip copies of static/ under content-hashed names (web/assets.py).
build/static: $(RUNTIME) static/vendor/htmx.min.js $(shell find static -type f 2>/dev/null)
	$(BIN)/flask build-assets > /dev/null
	touch build/static

setup: $(RUNTIME) static/vendor/htmx.min.js build/static

dev-setup: setup $(DEV)

db: setup
	$(BIN)/flask db-upgrade

demo: db
	$(BIN)/flask demo-data --if-empty

run: demo
	@$(BIN)/python -c "import demo; print(demo.summary())"
	@echo "Portal on http://127.0.0.1:$(PORT)  (emails, with their links, appear in this log)"
	$(BIN)/gunicorn --bind 127.0.0.1:$(PORT) --workers $(WORKERS) --threads 4 --access-logfile - "app:create_app()"

# A release archive for servers: code, htmx and the built static files; no node needed there.
dist: setup
	$(BIN)/python deploy/release.py --out dist

# ruff (lint and format) and mypy, with the settings in pyproject.toml (docs/code-quality.md).
lint: dev-setup
	$(BIN)/ruff check --quiet .
	$(BIN)/ruff format --check --quiet .
	$(BIN)/mypy

# Dev dependencies too: Lighthouse (`make bench`) and the Nu Html Checker (npm's vnu-jar, for
# tests/test_html_valid.py), after the runtime install above, which leaves them out (and which
# `npm ci` undoes when package.json changes: then this runs again). --ignore-scripts: vnu-jar's
# only install script downloads a Java runtime when there is none; the tests use Debian's.
NODE_DEV := node_modules/.dev-installed
$(NODE_DEV): package.json package-lock.json static/vendor/htmx.min.js
	npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	touch $@

test: lint $(NODE_DEV)
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist worksteal $(PYTEST_ARGS)

# What the tests need beyond Python (PostgreSQL, Chromium, nginx, node, Java), from Debian's
# packages, and the Nu Html Checker from npm; as root.
test-services:
	bash .ci/test-services

# The security and reliability suite (docs/security.md, docs/reliability.md), long part
# included: 500 Hypothesis cases per form and parameter, the full authorization matrix on
# PostgreSQL, the locust load run and the write soak (about an hour). `make test` runs its fast part.
PROOF_TESTS := tests/security tests/reliability tests/test_security.py tests/test_access.py \
	tests/test_delegation.py tests/test_sessions.py tests/test_static_analysis.py
proof: dev-setup
	$(BIN)/python -m pytest -q --long $(PROOF_TESTS) $(PYTEST_ARGS)

# The locust load run alone (docs/reliability.md): 50 people for 4 minutes on SQLite, about 5 min.
# `make load LOAD_ARGS="--database postgresql --users 50 --duration 4m"`; as root on a busy machine add "--priority -10".
LOAD_ARGS ?= --users 50 --duration 4m
load: dev-setup
	$(BIN)/python bench/load.py $(LOAD_ARGS)

# The performance figures (docs/performance.md): server time, throughput, the throttled
# browser journey and Lighthouse, on a 1,000,000-entry database it builds the first time.
# About 10 minutes. `make bench BENCH_ARGS="--quick"` for a short run.
BENCH_ARGS ?=
bench: dev-setup $(NODE_DEV)
	$(BIN)/python bench/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) node_modules static/vendor build dist instance/*.db*
