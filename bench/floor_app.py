"""The stack's floor: the least a Django view on this stack does for one key action.

A Django project of one view, run by `make bench` under the same gunicorn.conf.py as keyadmin:
the view loads a database-backed session (SQLite in WAL mode, as keyadmin's), makes one pooled
`requests` call to App Services' list route, and answers with a short template render of what
came back. No authentication, no CSRF, no audit row, no checks: whatever keyadmin costs beyond
this is keyadmin's own work; what this costs is the floor of Django, gunicorn and requests on
the machine, below which no goal can be met without changing the stack.

    python -m bench.floor_app setup      (migrate, make one session; prints its key)

Configured by the environment `bench/floor.py` gives it: FLOOR_DB (the SQLite file),
FLOOR_UPSTREAM (the list URL) and FLOOR_BEARER_FILE (a file holding the bench user's refresh
token: never in the environment or on a command line).
"""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path

import requests

SECRET_KEY = "bench-floor-only-not-a-secret"  # noqa: S105 - signs nothing but its own session
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1"]
ROOT_URLCONF = __name__
USE_TZ = True
INSTALLED_APPS = ["django.contrib.sessions"]
MIDDLEWARE = ["django.contrib.sessions.middleware.SessionMiddleware"]
SESSION_ENGINE = "django.contrib.sessions.backends.db"
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("FLOOR_DB", ":memory:"),
        "CONN_MAX_AGE": 600,
        "OPTIONS": {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
        },
    }
}
TEMPLATES = [{"BACKEND": "django.template.backends.django.DjangoTemplates", "DIRS": []}]
LOGGING_CONFIG = None

_http = requests.Session()
_http.trust_env = False
_ROW = (
    '{% for key in keys %}<tr id="key-{{ key.id }}"><th>{{ key.name }}</th>'
    "<td>{% if key.disabled %}Disabled{% else %}Enabled{% endif %}</td></tr>{% endfor %}"
)


def key_list(request):
    from django.http import HttpResponse

    request.session.get("n")  # the session row is read, as keyadmin reads its own
    answer = _http.get(
        os.environ["FLOOR_UPSTREAM"],
        headers={"Authorization": f"Bearer {_bearer()}", "Accept": "application/json"},
        timeout=(3.05, 10),
        allow_redirects=False,
    )
    keys = [
        {"id": key["_id"], "name": key["name"], "disabled": key["disabled"]}
        for key in answer.json()
    ]
    return HttpResponse(_row_template().render({"keys": keys}))


@functools.cache
def _row_template():
    from django.template import engines

    return engines["django"].from_string(_ROW)  # compiled once, as a loader would


@functools.cache
def _bearer() -> str:
    return Path(os.environ["FLOOR_BEARER_FILE"]).read_text().strip()


def _urlpatterns():
    from django.urls import path

    return [path("list/", key_list)]


urlpatterns = _urlpatterns() if os.environ.get("DJANGO_SETTINGS_MODULE") == __name__ else []


def _application():
    from django.core.wsgi import get_wsgi_application

    return get_wsgi_application()


application = _application() if os.environ.get("DJANGO_SETTINGS_MODULE") == __name__ else None


def setup() -> None:
    from django.contrib.sessions.backends.db import SessionStore
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    session = SessionStore()
    session["n"] = 1
    session.create()
    print(session.session_key)


if __name__ == "__main__":
    # This very module as the settings: imported again under its own name, it would build the
    # WSGI application (django.setup() inside django.setup()).
    os.environ["DJANGO_SETTINGS_MODULE"] = __name__
    import django

    django.setup()
    if sys.argv[1:] == ["setup"]:
        setup()
