# webpop: `make run` to start everything, `make test` to run the test suite.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
PORT ?= 8000
# Test processes (pytest-xdist; 0: one). On 2 cores, 2 took the suite from ~29.5 to 20.4 minutes with every
# test passing; 3 took 24-25 and left the chaos and outage tests' timings tight.
TEST_WORKERS ?= 2
HOST ?= 127.0.0.1
# Debian packages, as root or through sudo (a shell fragment; the package names follow).
APT_INSTALL = if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq

.PHONY: run test test-sqlite lint format bench migrate venv dev-deps system-deps clean

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

$(VENV)/.dev-installed: $(VENV)/.installed requirements-dev.txt
	$(PIP) install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

venv: $(VENV)/.installed
dev-deps: $(VENV)/.dev-installed

migrate: venv
	$(PY) manage.py initdata
	$(PY) manage.py migrate --noinput

# Web server, Celery worker and beat in the foreground; Ctrl-C stops all three.
run: venv
	$(PY) manage.py initdata
	$(PY) manage.py migrate --noinput
	$(PY) manage.py collectstatic --noinput --verbosity 0
	$(PY) manage.py serve --host $(HOST) --port $(PORT)

# Debian packages the tests need (real Dovecot; PostgreSQL and Redis, of which each test run starts private
# servers; rspamd, of which the spam tests start a private one; systemd-analyze checks deploy/systemd;
# Chromium for the browser tests, which Playwright drives as /usr/bin/chromium: never `playwright install`;
# gettext to update the translation catalogues in locale/); installed only when missing.
system-deps:
	@missing=""; \
	if ! command -v dovecot >/dev/null 2>&1 || ! test -e /usr/lib/dovecot/pop3; then missing="$$missing dovecot-pop3d"; fi; \
	if ! command -v pg_ctl >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then missing="$$missing postgresql"; fi; \
	if ! command -v redis-server >/dev/null 2>&1; then missing="$$missing redis-server"; fi; \
	if ! command -v rspamd >/dev/null 2>&1; then missing="$$missing rspamd"; fi; \
	if ! test -x /usr/bin/chromium; then missing="$$missing chromium"; fi; \
	if ! command -v systemd-analyze >/dev/null 2>&1; then missing="$$missing systemd"; fi; \
	if ! command -v msgfmt >/dev/null 2>&1; then missing="$$missing gettext"; fi; \
	if [ -n "$$missing" ]; then \
	  echo "Installing$$missing (needs root)"; \
	  $(APT_INSTALL) $$missing >/dev/null; \
	fi

# The whole suite on PostgreSQL and Redis: private servers in a temporary folder, which the test run
# (tests/services.py) starts and stops, unless DATABASE_URL / REDIS_URL name servers of yours. Then
# test-sqlite: the tests marked `sqlite` again in the embedded setup `make run` uses (SQLite, no Redis).
# TEST_WORKERS=0 runs the suite in one process (two by default).
test: dev-deps system-deps
	$(PY) manage.py initdata
	$(PY) manage.py makemigrations --check --dry-run
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-logo
	$(VENV)/bin/pytest -n $(TEST_WORKERS) --dist loadfile --durations=30 $(PYTEST_ARGS)
	@$(MAKE) --no-print-directory test-sqlite

# PYTEST_ARGS may select none of these (pytest's exit status 5): only then is running none not a failure.
test-sqlite: dev-deps system-deps
	@dir=$$(mktemp -d); status=0; \
	echo "Tests marked sqlite, on a SQLite file without Redis"; \
	DATABASE_URL=sqlite:///$$dir/webpop.sqlite3 REDIS_URL= $(VENV)/bin/pytest -m sqlite $(PYTEST_ARGS) || status=$$?; \
	rm -rf "$$dir"; \
	if [ "$$status" = 5 ] && [ -n "$(PYTEST_ARGS)" ]; then status=0; fi; \
	exit $$status

lint: dev-deps
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-logo

format: dev-deps
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# wrk loads the web benchmark (bench/web.py); without it a Python load generator shares the cores.
bench: dev-deps system-deps
	@if ! command -v wrk >/dev/null 2>&1; then \
	  echo "Installing wrk (needs root)"; \
	  $(APT_INSTALL) wrk >/dev/null; \
	fi
	$(PY) bench/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
