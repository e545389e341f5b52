"""A new key's secret exists in exactly one HTTP response: never in logs, the database, sessions,
messages or the cache. Keys are created through the views, with DEBUG logging on for keyadmin,
requests and urllib3, then every place the server could have kept something is searched."""

from __future__ import annotations

import io
import json
import logging
import pickle
import re
from pathlib import Path

import pytest
from django.contrib.sessions.models import Session
from django.core.cache import caches
from django.db import connection
from django.urls import reverse

from keyadmin.logformat import JsonFormatter, PlainFormatter
from tests.sso.staff import provision_staff
from tests.support import holds_jwt

SECRET_IN_PANEL = re.compile(r'<code id="secret-value-[0-9a-f]{24}"[^>]*>([^<]+)</code>')
VERBOSE_LOGGERS = ("keyadmin", "requests", "urllib3", "django", "django.request")


@pytest.fixture
def signed_in(client, emulator, user_credentials):
    provision_staff(client, name="Leak Auditor")
    email, password = user_credentials
    response = client.post(
        reverse("keyadmin:appservices-signin"),
        {"provider": "local-userpass", "email": email, "password": password},
    )
    assert response.status_code == 302, response.content[:500]
    return client


@pytest.fixture(params=["plain", "json"])
def log_output(request):
    """What a console handler in each KEYADMIN_LOG_FORMAT writes during the test, at DEBUG."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter() if request.param == "json" else PlainFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    yield request.param, stream
    root.removeHandler(handler)


def _postgresql_rows() -> bytes:
    """Every row of every table as PostgreSQL writes it out: what a data dump would hold."""
    rows: list[str] = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            name = connection.ops.quote_name(table)  # from the catalog, quoted
            cursor.execute(f"SELECT t::text FROM {name} AS t")  # noqa: S608
            rows.extend(row[0] for row in cursor.fetchall())
    return "\n".join(rows).encode()


def _database_bytes() -> bytes:
    if connection.vendor == "postgresql":
        return _postgresql_rows()
    connection.close()  # flush SQLite's page cache to the file
    name = Path(connection.settings_dict["NAME"])
    return b"".join(
        path.read_bytes() for path in (name, Path(f"{name}-wal"), Path(f"{name}-journal"))
        if path.exists()
    )  # fmt: skip


def _cache_bytes() -> bytes:
    found = b""
    for alias in caches:
        store = getattr(caches[alias], "_cache", {})
        for key, value in list(store.items()):
            found += str(key).encode() + (
                value if isinstance(value, bytes) else pickle.dumps(value)
            )
    return found


@pytest.mark.django_db(transaction=True)
def test_a_new_secret_leaves_no_trace_on_the_server(signed_in, caplog, capfd, log_output):
    for name in VERBOSE_LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
    secrets: list[str] = []
    responses: list[bytes] = []

    for number, htmx in enumerate([True, False, True]):
        headers = {"HX-Request": "true"} if htmx else {}
        response = signed_in.post(
            reverse("keyadmin:key-create"), {"name": f"leak-check-{number}"}, headers=headers
        )
        assert response.status_code == 200
        assert "no-store" in response["Cache-Control"]
        found = SECRET_IN_PANEL.findall(response.content.decode())
        assert len(found) == 1, "the create answer shows the secret exactly once"
        secrets.append(found[0].strip())
        responses.append(response.content)
        assert found[0] not in str(response.headers)
    # The pages after creation must not bring any secret back.
    for path in (reverse("keyadmin:keys"), reverse("keyadmin:keys") + "?q=leak"):
        later = signed_in.get(path).content.decode()
        assert not any(secret in later for secret in secrets)

    captured = capfd.readouterr()
    log_format, formatted = log_output
    logs = caplog.text + captured.out + captured.err + formatted.getvalue()
    assert "GET /auth/api_keys" in logs or "api_keys" in logs, "DEBUG logging was not captured"
    if log_format == "json":
        entries = [json.loads(line) for line in formatted.getvalue().splitlines()]
        assert any("api_keys" in entry["message"] for entry in entries)
        creates = [
            e for e in entries if e["logger"] == "keyadmin.access" and e["path"] == "/keys/new/"
        ]
        assert len(creates) == 3 and all(e["status"] == 200 and e["request_id"] for e in creates)
    session_rows = "".join(
        str(session.get_decoded()) + session.session_data for session in Session.objects.all()
    )
    database = _database_bytes()
    cache = _cache_bytes()
    assert database, "the test database is a real file"
    assert b"leak-check-0" in database, "the search sees what was written (the audit's key names)"

    for secret in secrets:
        assert len(secret) >= 32
        assert sum(secret.encode() in body for body in responses) == 1
        assert secret not in logs
        assert secret not in session_rows
        assert secret.encode() not in database
        assert secret.encode() not in cache


@pytest.mark.django_db(transaction=True)
def test_the_refresh_token_is_stored_encrypted(signed_in):
    session = Session.objects.get()
    stored = session.get_decoded()["appservices"]

    assert stored["refresh"].startswith("gAAAA")  # a Fernet token, not a JWT
    assert not holds_jwt(str(session.get_decoded()))  # no JWT in clear anywhere
    assert b"eyJhbGciOi" not in _database_bytes()
