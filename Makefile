# webpop: `make run` to start everything, `make test` to run the test suite.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
PORT ?= 8000
HOST ?= 127.0.0.1

.PHONY: run test lint format bench migrate venv dev-deps system-deps clean

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
	$(PY) manage.py migrate --noinput

# Web server, Celery worker and beat in the foreground; Ctrl-C stops all three.
run: venv
	$(PY) manage.py migrate --noinput
	$(PY) manage.py collectstatic --noinput --verbosity 0
	$(PY) manage.py serve --host $(HOST) --port $(PORT)

# Debian packages the tests need (real Dovecot; systemd-analyze checks deploy/systemd; Chromium for the browser
# tests, which Playwright drives as /usr/bin/chromium: never `playwright install`; gettext to update the
# translation catalogues in locale/); installed only when missing.
system-deps:
	@missing=""; \
	if ! command -v dovecot >/dev/null 2>&1 || ! test -e /usr/lib/dovecot/pop3; then missing="$$missing dovecot-pop3d"; fi; \
	if ! test -x /usr/bin/chromium; then missing="$$missing chromium"; fi; \
	if ! command -v systemd-analyze >/dev/null 2>&1; then missing="$$missing systemd"; fi; \
	if ! command -v msgfmt >/dev/null 2>&1; then missing="$$missing gettext"; fi; \
	if [ -n "$$missing" ]; then \
	  echo "Installing$$missing (needs root)"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

test: dev-deps system-deps
	$(PY) manage.py makemigrations --check --dry-run
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/pytest $(PYTEST_ARGS)

lint: dev-deps
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: dev-deps
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: dev-deps system-deps
	$(PY) bench/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
