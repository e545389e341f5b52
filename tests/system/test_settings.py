"""Settings come from the environment, and a wrong value stops start-up with a clear message.

Each case imports `keyadmin.settings` in a fresh interpreter with a clean production environment
(no KEYADMIN_DEBUG) plus the case's variables, as gunicorn or manage.py would on a server.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

FERNET_KEY = "b88ZosS5V5ZfD1dMUufyQV4MwkC62Sav1ApdzkjI_0I="
OTHER_FERNET_KEY = "3Vh0sF8n5v2nq1cXxVbUeQ0rMZbq3eJxk3hS6w2bG5o="
PRODUCTION = {
    "KEYADMIN_SECRET_KEY": "settings-test-" + "0123456789abcdefghijklmnopqrstuvwxyz" * 2,
    "KEYADMIN_TOKEN_KEY": FERNET_KEY,
    "KEYADMIN_ALLOWED_HOSTS": "keyadmin.example.com",
}
UNSET = None  # a case's value that removes the variable

SHOW = """
import json
from keyadmin import settings as s
print(json.dumps({
    "DEBUG": s.DEBUG,
    "ALLOWED_HOSTS": s.ALLOWED_HOSTS,
    "DATABASE": {k: v for k, v in s.DATABASES["default"].items() if k != "PASSWORD"},
    "SECURE_SSL_REDIRECT": s.SECURE_SSL_REDIRECT,
    "KEYADMIN_SSO": s.KEYADMIN_SSO,
    "STATIC_ROOT": str(s.STATIC_ROOT),
    "STATICFILES_BACKEND": s.STORAGES["staticfiles"]["BACKEND"],
    "FORMATTER": s.LOGGING["formatters"]["keyadmin"]["()"].__name__,
    "LOG_LEVEL": s.LOGGING["loggers"]["keyadmin"]["level"],
    "APPSERVICES_BASE_URL": s.APPSERVICES_BASE_URL,
}, default=str))
"""


def start(overrides: dict[str, str | None], code: str = "import keyadmin.settings"):
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        **PRODUCTION,
    }
    for name, value in overrides.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


def settings_with(**overrides: str | None) -> dict:
    result = start(overrides, SHOW)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout)


def test_production_is_the_default():
    values = settings_with()
    assert values["DEBUG"] is False
    assert values["SECURE_SSL_REDIRECT"] is True
    assert values["KEYADMIN_SSO"] == ""  # nobody gets in until an SSO mode is chosen
    assert values["DATABASE"]["ENGINE"] == "django.db.backends.sqlite3"
    assert values["DATABASE"]["NAME"].endswith("var/keyadmin.sqlite3")
    assert (
        values["STATICFILES_BACKEND"]
        == "keyadmin.staticfiles.MinifiedCompressedManifestStaticFilesStorage"
    )
    assert values["FORMATTER"] == "PlainFormatter"
    assert values["APPSERVICES_BASE_URL"] == "https://services.cloud.mongodb.com"


def test_the_development_profile_is_asked_for_explicitly():
    values = settings_with(KEYADMIN_DEBUG="true", KEYADMIN_ALLOWED_HOSTS=UNSET)
    assert values["DEBUG"] is True
    assert values["ALLOWED_HOSTS"] == ["127.0.0.1", "localhost"]
    assert values["KEYADMIN_SSO"] == "dev"
    assert values["SECURE_SSL_REDIRECT"] is False


def test_postgresql_comes_from_database_url():
    values = settings_with(
        DATABASE_URL="postgres://keyadmin:pw@db.example.com:5433/keyadmin?sslmode=require"
    )
    database = values["DATABASE"]
    assert database["ENGINE"] == "django.db.backends.postgresql"
    assert (database["HOST"], database["PORT"], database["NAME"]) == (
        "db.example.com",
        5433,
        "keyadmin",
    )
    assert database["CONN_MAX_AGE"] == 60
    assert database["CONN_HEALTH_CHECKS"] is True
    assert database["OPTIONS"] == {"sslmode": "require"}
    assert (
        settings_with(
            DATABASE_URL="postgres://keyadmin:pw@db.example.com/keyadmin",
            KEYADMIN_DB_CONN_MAX_AGE="0",
        )["DATABASE"]["CONN_MAX_AGE"]
        == 0
    )


def test_secrets_and_the_database_url_may_come_from_files(tmp_path):
    (tmp_path / "secret").write_text(PRODUCTION["KEYADMIN_SECRET_KEY"] + "\n")
    (tmp_path / "db").write_text("postgres://keyadmin:pw@db.example.com/keyadmin\n")
    values = settings_with(
        KEYADMIN_SECRET_KEY=UNSET,
        KEYADMIN_SECRET_KEY_FILE=str(tmp_path / "secret"),
        DATABASE_URL_FILE=str(tmp_path / "db"),
    )
    assert values["DATABASE"]["HOST"] == "db.example.com"


def test_other_settings_from_the_environment(tmp_path):
    values = settings_with(
        KEYADMIN_LOG_FORMAT="json",
        KEYADMIN_LOG_LEVEL="debug",
        KEYADMIN_STATIC_ROOT=str(tmp_path),
        APPSERVICES_BASE_URL="http://127.0.0.1:9090",
    )
    assert values["FORMATTER"] == "JsonFormatter"
    assert values["LOG_LEVEL"] == "DEBUG"
    assert values["STATIC_ROOT"] == str(tmp_path)
    assert values["APPSERVICES_BASE_URL"] == "http://127.0.0.1:9090"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"KEYADMIN_SECRET_KEY": UNSET}, "KEYADMIN_SECRET_KEY is not set"),
        ({"KEYADMIN_SECRET_KEY": "short-and-guessable"}, "KEYADMIN_SECRET_KEY is too weak"),
        ({"KEYADMIN_SECRET_KEY": "a" * 60}, "KEYADMIN_SECRET_KEY is too weak"),
        ({"KEYADMIN_SECRET_KEY_FILE": "/nonexistent/secret"}, "cannot be read"),
        ({"KEYADMIN_TOKEN_KEY": UNSET}, "KEYADMIN_TOKEN_KEY is not set"),
        ({"KEYADMIN_TOKEN_KEY": "not-a-fernet-key"}, "KEYADMIN_TOKEN_KEY is not a Fernet key"),
        ({"KEYADMIN_TOKEN_KEY": FERNET_KEY[:-4]}, "KEYADMIN_TOKEN_KEY is not a Fernet key"),
        (
            {"KEYADMIN_TOKEN_KEY_PREVIOUS": f"{OTHER_FERNET_KEY}, not-a-key"},
            "KEYADMIN_TOKEN_KEY_PREVIOUS: key 2 is not a Fernet key",
        ),
        ({"KEYADMIN_TOKEN_KEY_PREVIOUS": FERNET_KEY}, "key 1 is the current KEYADMIN_TOKEN_KEY"),
        ({"KEYADMIN_DEBUG": "maybe"}, "KEYADMIN_DEBUG must be true or false"),
        ({"KEYADMIN_ALLOWED_HOSTS": UNSET}, "KEYADMIN_ALLOWED_HOSTS is required"),
        ({"KEYADMIN_ALLOWED_HOSTS": " , "}, "KEYADMIN_ALLOWED_HOSTS is required"),
        ({"KEYADMIN_CSRF_TRUSTED_ORIGINS": "keyadmin.example.com"}, "takes origins"),
        ({"KEYADMIN_SESSION_SECONDS": "a day"}, "KEYADMIN_SESSION_SECONDS must be a number"),
        ({"KEYADMIN_SESSION_SECONDS": "0"}, "KEYADMIN_SESSION_SECONDS must be above zero"),
        ({"KEYADMIN_SESSION_IDLE_SECONDS": "60"}, "KEYADMIN_SESSION_IDLE_SECONDS must be at least"),
        ({"KEYADMIN_SESSION_IDLE_SECONDS": "half an hour"}, "must be a number"),
        ({"KEYADMIN_SSL_REDIRECT": "sometimes"}, "KEYADMIN_SSL_REDIRECT must be true or false"),
        ({"APPSERVICES_BASE_URL": "ftp://appservices.example.com"}, "must be an https URL"),
        ({"APPSERVICES_BASE_URL": "services.cloud.mongodb.com"}, "must be an https URL"),
        ({"APPSERVICES_BASE_URL": "http://appservices.example.com"}, "must be an https URL"),
        ({"APPSERVICES_BASE_URL": "https://services.cloud.mongodb.com/api"}, "without a path"),
        ({"APPSERVICES_BASE_URL": "https://services.cloud.mongodb.com:https"}, "is not a URL"),
        (
            {
                "APPSERVICES_BASE_URL": "https://appservices.example.com",
                "APPSERVICES_ALLOWED_HOSTS": "*.services.cloud.mongodb.com",
            },
            "APPSERVICES_ALLOWED_HOSTS does not allow",
        ),
        (
            {"APPSERVICES_ALLOWED_HOSTS": "127.0.0.1,https://eu.example.com/api"},
            "'https://eu.example.com/api' is not an origin",
        ),
        (
            {"APPSERVICES_ALLOWED_HOSTS": "127.0.0.1,http://eu.example.com:8080"},
            "is not an origin such as https://host:port",
        ),
        ({"APPSERVICES_DEADLINE": "0"}, "APPSERVICES_DEADLINE must be above zero"),
        ({"APPSERVICES_CONNECT_TIMEOUT": "0"}, "APPSERVICES_CONNECT_TIMEOUT must be above zero"),
        ({"APPSERVICES_READ_TIMEOUT": "soon"}, "APPSERVICES_READ_TIMEOUT must be a number"),
        ({"KEYADMIN_SSO": "header"}, "is not a sign-in mode"),
        ({"KEYADMIN_SSO": "dev"}, "needs KEYADMIN_DEBUG=true"),
        ({"KEYADMIN_SSO": "oidc"}, "KEYADMIN_OIDC_ISSUER is required"),
        ({"KEYADMIN_BRIDGE_TOKEN_SECONDS": "two minutes"}, "must be a whole number"),
        ({"DATABASE_URL": "mysql://keyadmin@db.example.com/keyadmin"}, "runs on PostgreSQL"),
        ({"DATABASE_URL": "db.example.com"}, "DATABASE_URL is not a database URL"),
        ({"DATABASE_URL_FILE": "/nonexistent/database-url"}, "DATABASE_URL_FILE"),
        ({"KEYADMIN_DB_CONN_MAX_AGE": "forever"}, "KEYADMIN_DB_CONN_MAX_AGE must be a whole"),
        ({"KEYADMIN_DB_CONN_MAX_AGE": "-1"}, "KEYADMIN_DB_CONN_MAX_AGE must be 0"),
        ({"KEYADMIN_LOG_LEVEL": "LOUD"}, "KEYADMIN_LOG_LEVEL must be one of DEBUG, INFO"),
        ({"KEYADMIN_LOG_FORMAT": "xml"}, "KEYADMIN_LOG_FORMAT must be one of plain, json"),
        ({"KEYADMIN_SIGNIN_TARGET_LIMIT": "0"}, "KEYADMIN_SIGNIN_TARGET_LIMIT must be 1 or more"),
        ({"KEYADMIN_SIGNIN_WINDOW_SECONDS": "15m"}, "must be a whole number"),
        ({"KEYADMIN_METRICS_TOKEN": "too-short"}, "KEYADMIN_METRICS_TOKEN must be at least 32"),
    ],
    ids=lambda value: value if isinstance(value, str) else "-".join(value),
)
def test_a_wrong_value_stops_start_up(overrides, message):
    result = start(overrides)

    assert result.returncode != 0
    assert "django.core.exceptions.ImproperlyConfigured" in result.stderr
    assert message in result.stderr.splitlines()[-1], result.stderr[-2000:]


@pytest.mark.parametrize(
    "url",
    [
        "mysql://keyadmin:hunter2-db-password@db.example.com/keyadmin",
        "postgres://keyadmin:hunter2-db-password@db.example.com:port/keyadmin",
    ],
)
def test_a_wrong_database_url_is_reported_without_its_password(url):
    result = start({"DATABASE_URL": url})

    assert result.returncode != 0
    assert "DATABASE_URL" in result.stderr
    assert "hunter2" not in result.stderr


def test_a_wrong_appservices_url_is_reported_without_its_password():
    result = start(
        {"APPSERVICES_BASE_URL": "https://user:hunter2-password@appservices.example.com"}
    )

    assert result.returncode != 0
    assert "must not hold a user name or password" in result.stderr
    assert "hunter2" not in result.stderr
