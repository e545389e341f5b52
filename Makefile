# The two commands the README promises: `make run` and `make test`. Everything else supports them.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
DEV_ENV := var/dev.env

.PHONY: run test lint bench chromium clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip 2>&1 | grep -v '^WARNING' || true
	$(PIP) install --quiet -e . 2>&1 | grep -v '^WARNING' || true
	$(PY) -c "import django, requests, csp, django_htmx, template_partials, jwt"
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed pyproject.toml
	$(PIP) install --quiet -e '.[test]' 2>&1 | grep -v '^WARNING' || true
	$(PY) -c "import pytest, pytest_django, playwright"
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

# Debian's Chromium for the browser tests (`playwright install` cannot download one here).
chromium:
	@command -v chromium >/dev/null || { \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
		else echo "Browser tests need Debian's chromium: sudo apt-get install chromium" >&2; exit 1; fi; }

# Development secrets, made once per checkout and never committed.
$(DEV_ENV):
	mkdir -p var
	{ echo "KEYADMIN_SECRET_KEY=$$($(PY) -c 'import secrets; print(secrets.token_urlsafe(50))')"; \
	  echo "KEYADMIN_TOKEN_KEY=$$($(PY) -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')"; \
	} > $@

run: $(VENV)/.installed $(DEV_ENV)
	set -a && . ./$(DEV_ENV) && set +a && KEYADMIN_DEBUG=true \
		APPSERVICES_BASE_URL=http://127.0.0.1:9090 APPSERVICES_APP_ID=keyadmin-demo \
		$(PY) manage.py rundev

lint: $(VENV)/.installed-test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: $(VENV)/.installed-test node_modules/.installed chromium lint
	$(PY) -m pytest

clean:
	rm -rf $(VENV) node_modules var staticfiles
