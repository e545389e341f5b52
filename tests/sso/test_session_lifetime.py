# ruff: noqa: F811 - pytest fixtures are imported, then named as test arguments
"""A staff session's App Services token: readable across a key rotation, revoked upstream when the
session ends by age or by idleness, and never left behind in the session table."""

from __future__ import annotations

import io
import time
from datetime import timedelta

import pytest
from cryptography.fernet import Fernet, InvalidToken
from django.contrib import auth
from django.contrib.sessions.models import Session
from django.core.management import call_command
from django.utils import timezone

from keyadmin.appservices import SessionEnded, UserSession
from keyadmin.appservices.connection import SESSION_KEY
from keyadmin.management.commands import rundev
from keyadmin.models import AuditEvent
from keyadmin.sso import session as session_module
from keyadmin.sso.session import LAST_SEEN_KEY
from tests.sso.fixtures import (
    jwks_server,  # noqa: F401 - fixture
    keys,  # noqa: F401 - fixture
    mint,
    use_assertion_mode,
)
from tests.support import KEYS_URL, SIGNIN_URL, connect, connected

pytestmark = pytest.mark.staff_sso

OLD_KEY = Fernet.generate_key().decode()
NEW_KEY = Fernet.generate_key().decode()


def stored_token(client) -> str:
    session = Session.objects.get(session_key=client.session.session_key)
    return session.get_decoded()[SESSION_KEY]["refresh"]


def test_a_rotated_token_key_keeps_sessions_readable(client, emulator, settings, user_credentials):
    settings.KEYADMIN_TOKEN_KEY = OLD_KEY
    connected(client, user_credentials)

    settings.KEYADMIN_TOKEN_KEY = NEW_KEY
    settings.KEYADMIN_TOKEN_KEY_PREVIOUS = [OLD_KEY]
    response = client.get(KEYS_URL)

    assert response.status_code == 200
    assert user_credentials[0] in response.content.decode()


def test_a_session_under_the_previous_key_is_still_revoked_upstream(
    client, emulator, settings, user_credentials
):
    settings.KEYADMIN_TOKEN_KEY = OLD_KEY
    connected(client, user_credentials)
    settings.KEYADMIN_TOKEN_KEY = NEW_KEY
    settings.KEYADMIN_TOKEN_KEY_PREVIOUS = [OLD_KEY]
    emulator.reset_stats()

    client.post("/appservices/sign-out/")

    assert emulator.request_count("session_logout") == 1


def test_new_tokens_are_encrypted_with_the_current_key_only(
    client, emulator, settings, user_credentials
):
    settings.KEYADMIN_TOKEN_KEY = NEW_KEY
    settings.KEYADMIN_TOKEN_KEY_PREVIOUS = [OLD_KEY]

    connected(client, user_credentials)

    token = stored_token(client)
    assert Fernet(NEW_KEY).decrypt(token.encode())
    with pytest.raises(InvalidToken):
        Fernet(OLD_KEY).decrypt(token.encode())


def test_a_token_key_no_longer_configured_means_signing_in_again(
    client, emulator, settings, user_credentials
):
    settings.KEYADMIN_TOKEN_KEY = OLD_KEY
    connected(client, user_credentials)
    settings.KEYADMIN_TOKEN_KEY = NEW_KEY

    assert client.get(KEYS_URL)["Location"] == SIGNIN_URL
    connect(client, user_credentials)
    assert client.get(KEYS_URL).status_code == 200


IDLE_MESSAGE = "You were signed out after 30 minutes without activity."


def last_seen(client, seconds_ago: int) -> None:
    session = client.session
    session[LAST_SEEN_KEY] = int(time.time()) - seconds_ago
    session.save()


def test_an_idle_session_ends_and_its_token_is_revoked(
    client, emulator, settings, user_credentials
):
    connected(client, user_credentials)
    user = auth.get_user(client)
    last_seen(client, 31 * 60)
    emulator.reset_stats()

    response = client.get(KEYS_URL)

    assert response.status_code == 302
    assert not auth.get_user(client).is_authenticated
    assert emulator.request_count("session_logout") == 1
    signout = AuditEvent.objects.filter(action="signout").latest("id")
    assert "no activity for 30 minutes" in signout.detail
    client.force_login(user)  # signing in again, as the SSO would
    assert IDLE_MESSAGE in client.get(SIGNIN_URL).content.decode()


def test_the_idle_time_is_a_setting(client, emulator, settings, user_credentials):
    settings.KEYADMIN_SESSION_IDLE_SECONDS = 5 * 60
    connected(client, user_credentials)
    last_seen(client, 4 * 60)
    assert client.get(KEYS_URL).status_code == 200

    last_seen(client, 6 * 60)
    assert client.get(KEYS_URL).status_code == 302


def test_activity_is_written_at_most_once_a_minute(client, emulator, user_credentials):
    connected(client, user_credentials)
    client.get(KEYS_URL)  # shows (and so drops) the "connected" notice
    last_seen(client, 30)
    before = Session.objects.get().session_data

    assert client.get(KEYS_URL).status_code == 200
    assert Session.objects.get().session_data == before

    last_seen(client, 90)
    assert client.get(KEYS_URL).status_code == 200
    assert client.session[LAST_SEEN_KEY] >= int(time.time()) - 5


def test_an_idle_proxy_session_says_why_on_the_same_page(
    client, emulator, settings, jwks_server, keys, user_credentials
):
    use_assertion_mode(settings, jwks_server.url, "Cf-Access-Jwt-Assertion")
    token = {"HTTP_CF_ACCESS_JWT_ASSERTION": mint(keys)}
    email, password = user_credentials
    signin = {"provider": "local-userpass", "email": email, "password": password}
    assert client.post(SIGNIN_URL, signin, **token).status_code == 302  # opens the session
    last_seen(client, 31 * 60)

    response = client.get(KEYS_URL, follow=True, **token)

    assert IDLE_MESSAGE in response.content.decode()


def refresh_token(client, settings) -> str:
    stored = client.session[SESSION_KEY]
    return Fernet(settings.KEYADMIN_TOKEN_KEY).decrypt(stored["refresh"].encode()).decode()


def token_works(hostname: str, token: str) -> bool:
    try:
        UserSession(hostname, token).list_api_keys()
    except SessionEnded:
        return False
    return True


def end_expired_sessions(*args: str) -> str:
    out = io.StringIO()
    call_command("end_expired_sessions", *args, stdout=out)
    return out.getvalue()


def test_an_expired_session_is_revoked_upstream_and_deleted(
    client, emulator, settings, user_credentials
):
    connected(client, user_credentials)
    token = refresh_token(client, settings)
    hostname = client.session[SESSION_KEY]["hostname"]
    Session.objects.update(expire_date=timezone.now() - timedelta(seconds=1))
    emulator.reset_stats()

    printed = end_expired_sessions()

    assert emulator.request_count("session_logout") == 1
    assert not Session.objects.exists()
    assert "revoked 1 App Services tokens; deleted 1 expired sessions" in printed
    with pytest.raises(SessionEnded):
        UserSession(hostname, token).list_api_keys()


def test_an_idle_session_is_disconnected_but_still_says_why(
    client, emulator, settings, user_credentials
):
    connected(client, user_credentials)
    user = auth.get_user(client)
    token = refresh_token(client, settings)
    hostname = client.session[SESSION_KEY]["hostname"]
    last_seen(client, 31 * 60)

    end_expired_sessions()

    assert not token_works(hostname, token)
    assert SESSION_KEY not in Session.objects.get().get_decoded()
    assert client.get(KEYS_URL).status_code == 302
    client.force_login(user)
    assert IDLE_MESSAGE in client.get(SIGNIN_URL).content.decode()


def test_sessions_in_use_are_left_alone(client, emulator, settings, user_credentials):
    connected(client, user_credentials)
    token = refresh_token(client, settings)
    hostname = client.session[SESSION_KEY]["hostname"]
    emulator.reset_stats()

    assert "revoked 0 App Services tokens; deleted 0 expired sessions" in end_expired_sessions()

    assert emulator.request_count("session_logout") == 0
    assert token_works(hostname, token)
    assert client.get(KEYS_URL).status_code == 200


def test_a_revocation_app_services_refuses_still_removes_the_session(
    client, emulator, user_credentials
):
    connected(client, user_credentials)
    Session.objects.update(expire_date=timezone.now() - timedelta(seconds=1))
    emulator.add_fault(route="session_logout", action="status", status=500)

    assert "revoked 0 App Services tokens; deleted 1 expired sessions" in end_expired_sessions()
    assert not Session.objects.exists()


def test_the_cleanup_stops_at_its_time_budget(client, emulator, user_credentials):
    connected(client, user_credentials)
    Session.objects.update(expire_date=timezone.now() - timedelta(seconds=1))

    done = session_module.end_expired_sessions(budget_seconds=-1)

    assert (done.revoked, done.deleted, done.left) == (0, 0, 1)
    assert Session.objects.exists()


def test_make_run_ends_expired_sessions_once_the_local_server_is_up(
    monkeypatch, settings, tmp_path
):
    settings.DEBUG = True
    settings.APPSERVICES_BASE_URL = "http://127.0.0.1:9"
    monkeypatch.delenv("KEYADMIN_APPS_FILE", raising=False)  # restored after the test
    monkeypatch.setattr(rundev, "demo_dir", lambda: tmp_path)
    happened: list[str] = []

    class LocalServer:
        def __init__(self, *args, **kwargs) -> None:
            pass

        def start(self) -> None:
            happened.append("local server started")

        def stop(self) -> None:
            happened.append("local server stopped")

    monkeypatch.delenv("RUN_MAIN", raising=False)
    monkeypatch.setattr(rundev, "EmulatorProcess", LocalServer)
    monkeypatch.setattr(rundev, "call_command", lambda name, *a, **k: happened.append(name))
    monkeypatch.setattr(rundev, "seed_customers", lambda app: happened.append("seeded") or [])

    rundev.Command(stdout=io.StringIO()).handle(addr="127.0.0.1:8000")

    assert happened == [
        "migrate",
        "local server started",
        "end_expired_sessions",
        "seeded",
        "runserver",
        "local server stopped",
    ]
