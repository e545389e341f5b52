"""Every App Services failure, on every action, with and without htmx.

Faults are injected through the local App Services server's controls (`route` = the action's
upstream route, so nothing else is disturbed); "refused" points keyadmin at a closed port
instead. Each cell checks: the visible message in place, the response the views define (htmx:
a 200 fragment, or HX-Redirect for a dead session; plain: the page or redirect), never a 500
page, no duplicate key, and no secret in any log line of keyadmin, requests or urllib3.

One App Services user serves the whole module; the keys a cell may change are its own.
"""

from __future__ import annotations

import logging
import re
import secrets
from dataclasses import dataclass

import pytest
import requests
from cryptography.fernet import Fernet
from django.conf import settings as django_settings

from keyadmin.emulator.process import free_port
from tests.conftest import APP_ID
from tests.support import (
    HTMX,
    SIGNIN_URL,
    connect,
    holds_jwt,
    key_url,
    point_keyadmin_at,
    row_post,
    sign_in_staff,
)

CREATE_URL = "/keys/new/"
KEYS_URL = "/keys/"
LOGGERS = ("keyadmin", "requests", "urllib3", "django")
TIMEOUT = (1, 0.5)  # connect, read: set for the "timeout" cells only, whose fault delays 1.5 s

FAULTS: dict[str, dict | None] = {
    "refused": None,  # a closed port: no fault spec, keyadmin is pointed elsewhere
    "timeout": {"action": "delay", "delay_ms": 1500},
    "500-json": {
        "action": "status",
        "status": 500,
        "body": {"error": "internal server error", "error_code": "InternalServerError"},
    },
    "502-html": {"action": "html", "status": 502},
    "503": {"action": "status", "status": 503, "headers": {"Retry-After": "1"}},
    "malformed": {"action": "malformed"},
    "401": {
        "action": "status",
        "status": 401,
        "body": {
            "error": "invalid session: failed to find refresh token",
            "error_code": "InvalidSession",
        },
    },
    "403": {
        "action": "status",
        "status": 403,
        "body": {"error": "forbidden by policy", "error_code": "Forbidden"},
    },
    "429": {
        "action": "status",
        "status": 429,
        "body": {"error": "too many requests", "error_code": "TooManyRequests"},
        "headers": {"Retry-After": "1"},
    },
}

# What the staff member reads, by fault (actions on a key, the list and the detail page).
SAYS = {
    "refused": "keyadmin could not reach App Services",
    "timeout": "App Services did not answer in time",
    "500-json": "App Services had an internal error (HTTP 500)",
    "502-html": "App Services answered with an error page (HTTP 502)",
    "503": "App Services had an internal error (HTTP 503)",
    "malformed": "App Services sent an answer keyadmin cannot read",
    "401": "The App Services session has ended",
    "403": "App Services does not let this session manage API keys",
    "429": "App Services is limiting requests right now",
}
# A create with no usable answer is followed by one list request, which finds no such key.
CREATE_SAYS = {
    **SAYS,
    "timeout": "so it was most likely not created",
    "500-json": "the key was not created",
    "502-html": "the key was not created",
    "503": "the key was not created",
    "malformed": "the key was not created",
}
SIGNIN_SAYS = {
    **SAYS,
    "401": "App Services did not accept those credentials",
    "403": "App Services refused the request.",
}

ROUTE = {
    "signin": "login",
    "list": "keys_list",
    "detail": "keys_get",
    "create": "keys_create",
    "enable": "keys_enable",
    "disable": "keys_disable",
    "delete": "keys_delete",
}
ROW_ACTIONS = ("enable", "disable", "delete")


@dataclass
class SharedUser:
    email: str
    password: str
    key_id: str  # for detail, enable and disable (each may land after a timeout: harmless)


def _upstream(emulator, email: str, password: str) -> tuple[requests.Session, str]:
    """Sign in to the local server directly (not through keyadmin): a session and its host."""
    http = requests.Session()
    http.trust_env = False
    base = f"{emulator.url}/api/client/v2.0"
    answer = http.post(
        f"{base}/app/{APP_ID}/auth/providers/local-userpass/login",
        json={"username": email, "password": password},
        timeout=5,
    )
    answer.raise_for_status()
    http.headers["Authorization"] = f"Bearer {answer.json()['refresh_token']}"
    return http, base


def _make_key(emulator, user: SharedUser, name: str) -> str:
    http, base = _upstream(emulator, user.email, user.password)
    answer = http.post(f"{base}/auth/api_keys", json={"name": name}, timeout=5)
    answer.raise_for_status()
    return answer.json()["_id"]


def _delete_key(emulator, user: SharedUser, key_id: str) -> None:
    http, base = _upstream(emulator, user.email, user.password)
    http.delete(f"{base}/auth/api_keys/{key_id}", timeout=5)  # 404 when already gone: fine


@pytest.fixture(scope="module")
def shared_user(emulator) -> SharedUser:
    email = f"matrix-{secrets.token_hex(4)}@example.com"
    password = secrets.token_urlsafe(12)
    emulator.create_user(email, password)
    user = SharedUser(email, password, "")
    user.key_id = _make_key(emulator, user, "matrix-shared")
    return user


def _refresh_token(client) -> str:
    stored = client.session["appservices"]["refresh"]
    return Fernet(django_settings.KEYADMIN_TOKEN_KEY).decrypt(stored.encode()).decode()


def _refuse_connections(client, settings) -> None:
    """Point keyadmin at a port nothing listens on: the sign-in's base URL, the session's host."""
    closed = f"http://127.0.0.1:{free_port()}"
    point_keyadmin_at(settings, closed)
    if "appservices" in client.session:
        session = client.session
        session["appservices"]["hostname"] = closed
        session.save()


def _send(client, action: str, htmx: bool, user: SharedUser, key_id: str, name: str):
    headers = HTMX if htmx else {}
    if action == "signin":
        data = {"provider": "local-userpass", "email": user.email, "password": user.password}
        return client.post(SIGNIN_URL, data, headers=headers)
    if action == "list":
        return client.get(KEYS_URL, headers=headers)
    if action == "detail":
        return client.get(key_url(key_id), headers=headers)
    if action == "create":
        return client.post(CREATE_URL, {"name": name}, headers=headers)
    disabled = action == "enable"  # the row showed the state the action changes
    data = row_post(key_id, "matrix-key", disabled=disabled, confirm="1")
    return client.post(key_url(key_id, action), data, headers=headers)


def _expected(fault: str, action: str, htmx: bool) -> tuple[int, str | None]:
    """(status, Location or HX-Redirect or None)."""
    if fault == "401" and action != "signin":
        return (200, "hx") if htmx else (302, SIGNIN_URL)
    if action in ROW_ACTIONS and not htmx:
        return 302, KEYS_URL
    if fault == "403" and not htmx and action in ("list", "detail", "create"):
        return 403, None
    return 200, None


def _says(fault: str, action: str) -> str:
    if action == "signin":
        return SIGNIN_SAYS[fault]
    if action == "create":
        return CREATE_SAYS[fault]
    return SAYS[fault]


def _visible(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


@pytest.mark.parametrize("htmx", [True, False], ids=["htmx", "plain"])
@pytest.mark.parametrize("action", list(ROUTE))
@pytest.mark.parametrize("fault", list(FAULTS))
def test_every_fault_on_every_action_is_answered_in_place(
    client, emulator, settings, caplog, shared_user, fault, action, htmx
):
    user = shared_user
    sign_in_staff(client)
    name = f"m-{fault}-{action}-{'h' if htmx else 'p'}"
    key_id = user.key_id
    if action == "delete":
        key_id = _make_key(emulator, user, name)  # its own key: a delayed delete may land
    secrets_seen = [user.password]
    if action != "signin":
        connect(client, (user.email, user.password))
        secrets_seen.append(_refresh_token(client))
    secrets_seen.append(client.cookies[django_settings.SESSION_COOKIE_NAME].value)
    if fault == "refused":
        _refuse_connections(client, settings)
    else:
        emulator.add_fault(route=ROUTE[action], **FAULTS[fault])
    if fault == "timeout":
        settings.APPSERVICES_TIMEOUT = TIMEOUT  # only now: sign-ins above keep the default
    emulator.reset_stats()
    for logger in LOGGERS:
        caplog.set_level(logging.DEBUG, logger=logger)

    try:
        response = _send(client, action, htmx, user, key_id, name)
        upstream = emulator.stats()["by_route"]
        emulator.clear_faults()

        status, where = _expected(fault, action, htmx)
        assert response.status_code == status, response.content.decode()[:1500]
        if where == "hx":
            assert response["HX-Redirect"] == SIGNIN_URL
            assert "appservices" not in client.session  # the dead session is forgotten
            shown = client.get(SIGNIN_URL).content.decode()  # where HX-Redirect goes
        elif where:
            assert response["Location"] == where
            shown = client.get(where).content.decode()
        else:
            shown = response.content.decode()
            if htmx and action in ("list", "create", *ROW_ACTIONS):
                assert "<html" not in shown  # a fragment, swapped in place
        assert _says(fault, action) in _visible(shown), _visible(shown)[:1500]
        assert "<title>Something went wrong" not in shown  # never the 500 page
        assert "forbidden by policy" not in shown  # upstream text goes to the log only

        # Never a second attempt at a create, never a duplicate key.
        assert upstream["keys_create"] <= 1
        if action == "create" and fault not in ("refused", "401", "403", "429"):
            assert upstream["keys_list"] == 1  # the one look for the key, and nothing else
        names = [key["name"] for key in emulator.keys_of(user.email)]
        assert len(names) == len(set(names)), names
        assert names.count(name) <= 1
    finally:
        if action == "delete":
            _delete_key(emulator, user, key_id)

    logs = "\n".join(record.getMessage() for record in caplog.records)
    assert logs, "DEBUG logging was not captured"
    for secret in secrets_seen:
        assert secret not in logs
    assert not holds_jwt(logs)
    for shape in ("gAAAA", "Bearer", "Cookie"):  # Fernet, auth header, cookies
        assert shape not in logs


def test_a_rate_limited_create_is_not_looked_up(client, emulator, settings, shared_user):
    """429 is a refusal before any work: the create made nothing, so no list request either."""
    sign_in_staff(client)
    connect(client, (shared_user.email, shared_user.password))
    emulator.add_fault(route="keys_create", **FAULTS["429"])
    emulator.reset_stats()

    response = client.post(CREATE_URL, {"name": "rate-limited"}, headers=HTMX)

    assert emulator.stats()["total"] == 1
    html = _visible(response.content.decode())
    assert SAYS["429"] in html
    assert "press “Create key” to try again" in html
