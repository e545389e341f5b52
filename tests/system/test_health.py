"""/healthz (the process answers) and /readyz (the database, and App Services when asked)."""

from __future__ import annotations

import threading

import pytest
from django.db import OperationalError, connections

from keyadmin import health
from tests.sso.fixtures import use_remote_user_mode

ELSEWHERE = "203.0.113.7"  # a client address that is not this machine


@pytest.fixture(autouse=True)
def _no_cached_upstream_answer():
    health.upstream_check.forget()
    yield
    health.upstream_check.forget()


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


def test_a_client_elsewhere_cannot_make_readyz_ask_app_services(client, emulator):
    emulator.reset_stats()

    response = client.get("/readyz?appservices=1", REMOTE_ADDR=ELSEWHERE)

    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok"}
    assert "KEYADMIN_READYZ_TOKEN" in response.json()["note"]
    assert emulator.request_count() == 0


def test_behind_a_proxy_the_address_it_saw_decides(client, emulator, settings):
    settings.KEYADMIN_TRUSTED_PROXY_COUNT = 1
    emulator.reset_stats()

    response = client.get(
        "/readyz?appservices=1", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR=ELSEWHERE
    )

    assert "appservices" not in response.json()["checks"]
    assert emulator.request_count() == 0


def test_a_local_proxy_with_no_trusted_proxy_count_does_not_open_readyz(client, emulator, settings):
    # nginx on the same host, KEYADMIN_TRUSTED_PROXY_COUNT left at 0: every client's address is
    # the proxy's loopback one, yet what it relays is a client elsewhere.
    settings.KEYADMIN_TRUSTED_PROXY_COUNT = 0
    emulator.reset_stats()

    response = client.get(
        "/readyz?appservices=1", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="127.0.0.1"
    )

    assert "appservices" not in response.json()["checks"]
    assert emulator.request_count() == 0


def test_the_readyz_token_lets_a_client_elsewhere_ask(client, emulator, settings):
    settings.KEYADMIN_READYZ_TOKEN = "readyz-token-for-tests"
    emulator.reset_stats()

    wrong = client.get(
        "/readyz?appservices=1", REMOTE_ADDR=ELSEWHERE, HTTP_AUTHORIZATION="Bearer not-it"
    )
    right = client.get(
        "/readyz?appservices=1",
        REMOTE_ADDR=ELSEWHERE,
        HTTP_AUTHORIZATION="Bearer readyz-token-for-tests",
    )

    assert "appservices" not in wrong.json()["checks"]
    assert right.json()["checks"] == {"database": "ok", "appservices": "ok"}
    assert emulator.request_count("location") == 1


def test_one_upstream_answer_stands_for_a_few_seconds(client, emulator, monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(health, "_clock", lambda: now[0])
    emulator.reset_stats()

    for _ in range(5):
        assert client.get("/readyz?appservices=1").json()["checks"]["appservices"] == "ok"
    now[0] += health.UPSTREAM_CHECK_SECONDS - 0.5
    client.get("/readyz?appservices=1")
    assert emulator.request_count("location") == 1

    now[0] += 1.0
    client.get("/readyz?appservices=1")
    assert emulator.request_count("location") == 2


def test_a_failed_upstream_answer_is_kept_as_well(client, emulator, monkeypatch):
    monkeypatch.setattr(health, "_clock", lambda: 1000.0)
    emulator.add_fault(route="location", action="status", status=500, times=1)
    emulator.reset_stats()

    assert client.get("/readyz?appservices=1").status_code == 503
    assert client.get("/readyz?appservices=1").status_code == 503
    assert emulator.request_count("location") == 1


def test_probes_during_a_slow_check_make_no_request_of_their_own(emulator, monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(health, "_clock", lambda: now[0])
    assert health.upstream_check.ok()  # an answer to fall back on
    now[0] += health.UPSTREAM_CHECK_SECONDS + 1
    emulator.set_latency(800)
    emulator.reset_stats()
    slow = threading.Thread(target=health.upstream_check.ok)
    slow.start()
    while emulator.request_count("location") == 0 and slow.is_alive():
        threading.Event().wait(0.02)  # until the slow check is on the wire (bounded by it)

    answers = [health.upstream_check.ok() for _ in range(5)]  # the lock is not held meanwhile
    still_checking = slow.is_alive()
    slow.join(timeout=10)

    assert answers == [True] * 5
    assert still_checking
    assert emulator.request_count("location") == 1


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
