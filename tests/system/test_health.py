"""/healthz (the process answers) and /readyz (the database, and App Services when asked)."""

from __future__ import annotations

import pytest
from django.db import OperationalError, connections

from tests.sso.fixtures import use_remote_user_mode


def test_healthz_answers_without_touching_the_database(client, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert "no-store" in response["Cache-Control"]
    assert response["X-Request-ID"]


def test_readyz_asks_the_database(client, django_assert_num_queries):
    with django_assert_num_queries(1):
        response = client.get("/readyz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok"}}
    assert "no-store" in response["Cache-Control"]


def test_readyz_is_503_when_the_database_does_not_answer(client, monkeypatch, caplog):
    def refuse(*args, **kwargs):
        raise OperationalError('connection to server failed: password="hunter2-db"')

    monkeypatch.setattr(connections["default"], "cursor", refuse)
    response = client.get("/readyz")

    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "checks": {"database": "failed"}}
    assert "hunter2" not in response.content.decode() + caplog.text
    assert "OperationalError" in caplog.text


def test_readyz_asks_app_services_only_when_told_to(client, emulator):
    emulator.reset_stats()
    assert client.get("/readyz").status_code == 200
    assert emulator.request_count() == 0

    response = client.get("/readyz?appservices=1")

    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok", "appservices": "ok"}
    assert emulator.request_count("location") == 1


def test_readyz_is_503_when_app_services_does_not_answer(client):
    # Without the `emulator` fixture, APPSERVICES_BASE_URL points at a closed loopback port.
    response = client.get("/readyz?appservices=1")

    assert response.status_code == 503
    assert response.json() == {
        "status": "unavailable",
        "checks": {"database": "ok", "appservices": "failed"},
    }


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_only_get_and_head(client, path):
    assert client.head(path).status_code == 200
    assert client.post(path).status_code == 405


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_no_https_redirect(client, settings, path):
    settings.SECURE_SSL_REDIRECT = True

    assert client.get(path).status_code == 200
    assert client.get("/keys/").status_code == 301


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_no_identity_needed_where_the_sso_vouches_for_every_request(client, settings, path):
    use_remote_user_mode(settings)

    assert client.get("/keys/").status_code == 401  # nobody vouched: fail closed
    assert client.get(path).status_code == 200
