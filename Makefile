# The two commands the README promises: `make run` and `make test`. Everything else supports them.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
DEV_ENV := var/dev.env

.PHONY: run test test-fast test-postgres lint bench chromium nginx messages clean screenshots

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip 2>&1 | grep -v '^WARNING' || true
	$(PIP) install --quiet -e . 2>&1 | grep -v '^WARNING' || true
	$(PY) -c "import django, requests, csp, django_htmx, template_partials, jwt, dj_database_url, psycopg"
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

# Debian's nginx, which tests/system/test_slow_clients.py runs in front of gunicorn as
# docs/deploy.md section 6 sets it up. Without it (and not root) those tests are skipped, on CI failed.
nginx:
	@test -x /usr/sbin/nginx || { \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq nginx >/dev/null; \
		else echo "The slow-client tests need Debian's nginx (sudo apt-get install nginx); skipping them" >&2; fi; }

# Translations: locale/es/LC_MESSAGES/django.po is committed, the .mo is built here (git-ignored)
# with GNU gettext's msgfmt. django-admin runs without settings (none are needed), and --ignore
# keeps compilemessages out of the catalogs inside .venv (it would recompile Django's own).
MO := locale/es/LC_MESSAGES/django.mo
I18N_IGNORE := --ignore=.venv --ignore=node_modules --ignore=var --ignore=staticfiles

$(MO): locale/es/LC_MESSAGES/django.po $(VENV)/.installed
	@command -v msgfmt >/dev/null || { \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq gettext >/dev/null; \
		else echo "Compiling translations needs GNU gettext: sudo apt-get install gettext" >&2; exit 1; fi; }
	env -u DJANGO_SETTINGS_MODULE $(VENV)/bin/django-admin compilemessages $(I18N_IGNORE) --verbosity 0
	touch $@

# After adding or changing a visible string: update the .po, then fill in every empty msgstr.
messages: $(VENV)/.installed
	env -u DJANGO_SETTINGS_MODULE $(VENV)/bin/django-admin makemessages --locale es $(I18N_IGNORE) \
		--ignore=tests --ignore=bench --add-location file --no-obsolete

# Development secrets, made once per checkout and never committed.
$(DEV_ENV):
	mkdir -p var
	{ echo "KEYADMIN_SECRET_KEY=$$($(PY) -c 'import secrets; print(secrets.token_urlsafe(50))')"; \
	  echo "KEYADMIN_TOKEN_KEY=$$($(PY) -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())')"; \
	} > $@

run: $(VENV)/.installed $(DEV_ENV) $(MO)
	set -a && . ./$(DEV_ENV) && set +a && KEYADMIN_DEBUG=true \
		APPSERVICES_BASE_URL=http://127.0.0.1:9090 APPSERVICES_APP_ID=keyadmin-demo \
		$(PY) manage.py rundev

lint: $(VENV)/.installed-test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test: $(VENV)/.installed-test node_modules/.installed chromium nginx $(MO) lint
	$(PY) -m pytest

# The inner loop: everything but the browser and load tests (about a quarter of `make test`).
test-fast: $(VENV)/.installed-test node_modules/.installed $(MO)
	$(PY) -m pytest -m "not browser and not load"

# The suite once more on PostgreSQL (.ci/run starts one and sets DATABASE_URL). The role must be
# allowed to create databases: each run makes and drops its own test_keyadmin_<pid>. Left out:
# what never touches keyadmin's database (the App Services client and the local server, which
# keeps its own SQLite file), the browser tests, which reach the database only through the same
# views the other tests drive on PostgreSQL, and the load and slow-client runs, whose servers
# always get a SQLite file of their own (bench/harness.py).
test-postgres: $(VENV)/.installed-test node_modules/.installed $(MO)
	@case "$$DATABASE_URL" in postgres://*|postgresql://*) ;; \
		*) echo "test-postgres needs DATABASE_URL=postgres://USER:PASSWORD@HOST:PORT/NAME" >&2; exit 1;; esac
	$(PY) -m pytest -m "not browser and not load" --ignore=tests/appservices --ignore=tests/emulator

# keyadmin under gunicorn (gunicorn.conf.py) on the local App Services server: latency against the
# direct floor, upstream requests, bytes, CPU and memory per worker, throughput. Writes bench/results.json.
bench: $(VENV)/.installed
	$(PY) -m bench.run

clean:
	rm -rf $(VENV) node_modules var staticfiles

# Refresh the README's pictures from a real browser run.
screenshots: $(VENV)/.installed-test node_modules/.installed chromium $(MO)
	KEYADMIN_UPDATE_SCREENSHOTS=1 $(PY) -m pytest -q tests/browser/test_screenshot.py tests/browser/test_spanish.py
