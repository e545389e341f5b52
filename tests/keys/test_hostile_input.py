"""Hostile input: every case is refused with a clear answer, and an invalid one
never costs an App Services request (the local server's request count stays where it was).

Names typed into the create form, display names posted back by row forms, key ids in URLs (and
handed to the client directly), forged and oversized headers (in process, and through gunicorn
as production runs it), CSRF, GET on state-changing routes, and session fixation.
"""

from __future__ import annotations

import html as htmllib
import os
import re
import socket
import subprocess
import sys
import time

import pytest
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.test import Client

from keyadmin import appservices
from keyadmin.emulator.process import free_port
from tests.conftest import ROOT
from tests.sso.fixtures import STAFF, use_remote_user_mode
from tests.support import (
    CREATE_URL,
    HTMX,
    KEYS_URL,
    SIGNIN_URL,
    FormClient,
    connect,
    connected,
    connected_with_key,
    key_url,
    of,
    row_post,
    sign_in_staff,
)

ONLY_CHARS = "A key name can only contain ASCII letters, digits, underscores (_) and hyphens (-)."
TOO_LONG = "Ensure this value has at most 64 characters"
NOT_FOUND = "There is nothing at this address."
FORM_EXPIRED = "This form has expired"
BAD_REQUEST = "keyadmin cannot accept this request"
A_KEY_ID = "6b0848db779f79b5c1caeb3e"


def visible(html: str) -> str:
    return htmllib.unescape(" ".join(re.sub(r"<[^>]+>", " ", html).split()))


@pytest.fixture
def upstream(emulator):
    """Asserts, after the test, that it cost App Services nothing beyond what it allowed."""

    class Upstream:
        allowed = 0

        def start(self) -> None:
            emulator.reset_stats()

    counter = Upstream()
    counter.start()
    yield counter
    assert emulator.request_count() == counter.allowed, emulator.stats()["by_route"]


# --- Names typed into the create form ---------------------------------------------------------

HOSTILE_NAMES = [
    pytest.param("", "Give the key a name.", id="empty"),
    pytest.param("x" * 1000, TOO_LONG, id="1000-chars"),
    pytest.param("x" * 65, TOO_LONG, id="65-chars"),
    pytest.param("my key", ONLY_CHARS, id="inner-space"),
    pytest.param("key\u00a0nbsp", ONLY_CHARS, id="no-break-space"),
    pytest.param("clé", ONLY_CHARS, id="latin-accent"),
    pytest.param("ключ", ONLY_CHARS, id="cyrillic"),
    pytest.param("名前", ONLY_CHARS, id="cjk"),
    pytest.param("🔑-key", ONLY_CHARS, id="emoji"),
    pytest.param("\uff4b\uff45\uff59", ONLY_CHARS, id="fullwidth-letters"),
    pytest.param("١٢٣", ONLY_CHARS, id="arabic-indic-digits"),
    pytest.param("\u202eyek-lirt", ONLY_CHARS, id="right-to-left-override"),
    pytest.param("a\u200bb", ONLY_CHARS, id="zero-width-space"),
    pytest.param("a\x00b", "Null characters are not allowed.", id="nul"),
    pytest.param("bell\x07", ONLY_CHARS, id="bell"),
    pytest.param("line\nbreak", ONLY_CHARS, id="newline"),
    pytest.param("tab\tname", ONLY_CHARS, id="tab"),
    pytest.param("esc\x1b[31mred", ONLY_CHARS, id="ansi-escape"),
    pytest.param("<script>alert(1)</script>", ONLY_CHARS, id="script"),
    pytest.param('"><img src=x onerror=alert(1)>', ONLY_CHARS, id="attribute-breakout"),
    pytest.param("</form><form action=//evil.example>", ONLY_CHARS, id="form-breakout"),
    pytest.param("' OR '1'='1", ONLY_CHARS, id="sql-or"),
    pytest.param("x'; DROP TABLE keyadmin_auditevent;--", ONLY_CHARS, id="sql-drop"),
    pytest.param("%s%s%n", ONLY_CHARS, id="printf"),
    pytest.param("{0}", ONLY_CHARS, id="format-brace"),
    pytest.param("%(x)s", ONLY_CHARS, id="format-percent-mapping"),
    pytest.param("{{ request }}", ONLY_CHARS, id="template"),
    pytest.param("${jndi:ldap://x/a}", ONLY_CHARS, id="jndi"),
    pytest.param("../session", ONLY_CHARS, id="path-traversal"),
]


@pytest.mark.parametrize(("name", "says"), HOSTILE_NAMES)
def test_a_hostile_key_name_is_refused_in_the_form_before_any_request(
    client, emulator, user_credentials, upstream, caplog, name, says
):
    connected(client, user_credentials)
    upstream.start()

    fragment = client.post(CREATE_URL, {"name": name}, headers=HTMX)
    page = client.post(CREATE_URL, {"name": name})

    assert fragment.status_code == page.status_code == 200
    html = fragment.content.decode()
    assert html.lstrip().startswith('<form id="create-form"')
    assert 'aria-invalid="true"' in html and 'id="id_name_error"' in html
    assert says in visible(html)
    assert says in visible(page.content.decode()) and "<html" in page.content.decode()
    for body in (html, page.content.decode()):
        assert (
            "<script>alert" not in body
            and "<img src=x" not in body
            and "<form action=//" not in body
        )
        assert "secret-panel" not in body
    if len(name) >= 3:
        assert name not in caplog.text  # nothing typed reaches a log line (log injection)


@pytest.mark.parametrize(
    "name",
    ["<script>alert(1)</script>", "\u202eyek", "x" * 1000, "a\nb"],
    ids=["script", "rtl-override", "1000-chars", "newline"],
)
def test_a_hostile_display_name_posted_by_a_row_form_is_dropped(
    client, emulator, user_credentials, upstream, name
):
    key_id = connected_with_key(client, emulator, user_credentials)
    upstream.start()

    confirm = client.post(key_url(key_id, "delete"), row_post(key_id, name))  # no confirm=1
    row = client.post(key_url(key_id, "disable"), row_post(key_id, name), headers=HTMX)

    upstream.allowed = 1  # the disable itself, by id; the name is never sent upstream
    for body in (confirm.content.decode(), row.content.decode()):
        assert name not in body
        assert "<script>alert" not in body
    assert f"Key “{key_id}” {of(user_credentials[0])} disabled" in visible(
        row.content.decode()
    )  # labelled by its id
    assert "Delete key" in visible(confirm.content.decode())


# --- Key ids in URLs --------------------------------------------------------------------------

BAD_IDS = [
    pytest.param("../session", id="dot-dot-session"),
    pytest.param("..%2fsession", id="encoded-slash"),
    pytest.param("..%2Fsession", id="encoded-slash-upper"),
    pytest.param("%2e%2e%2fsession", id="all-encoded"),
    pytest.param("%2e%2e/session", id="encoded-dots"),
    pytest.param("..%5csession", id="encoded-backslash"),
    pytest.param(A_KEY_ID[:23], id="23-hex"),
    pytest.param(A_KEY_ID + "0", id="25-hex"),
    pytest.param(A_KEY_ID.upper(), id="upper-case"),
    pytest.param("٦" + A_KEY_ID[1:], id="arabic-indic-digit"),
    pytest.param("\uff16" + A_KEY_ID[1:], id="fullwidth-digit"),
    pytest.param(A_KEY_ID + "%0a", id="trailing-newline"),
    pytest.param(A_KEY_ID + "%00", id="trailing-nul"),
    pytest.param("%20" + A_KEY_ID, id="leading-space"),
]
ID_ROUTES = [("get", ""), ("post", "enable"), ("post", "disable"), ("post", "delete")]


@pytest.mark.parametrize(("method", "action"), ID_ROUTES, ids=[a or "detail" for _, a in ID_ROUTES])
@pytest.mark.parametrize("bad_id", BAD_IDS)
def test_a_malformed_key_id_in_the_url_is_a_404_before_any_view(
    client, emulator, user_credentials, upstream, bad_id, method, action
):
    connected(client, user_credentials)
    upstream.start()
    url = f"/keys/{bad_id}/{action + '/' if action else ''}"

    response = getattr(client, method)(url, row_post(A_KEY_ID, "x", confirm="1"))

    assert response.status_code == 404
    assert NOT_FOUND in response.content.decode()


@pytest.mark.parametrize(
    "bad_id",
    [
        "../session",
        "../delete",
        "..%2fsession",
        A_KEY_ID[:23],
        A_KEY_ID + "0",
        A_KEY_ID.upper(),
        "٦" + A_KEY_ID[1:],
        A_KEY_ID + "\n",
        "\n" + A_KEY_ID,
        A_KEY_ID + "/../../session",
        "",
    ],
    ids=lambda value: repr(value)[:20],
)
def test_the_client_refuses_a_malformed_key_id_itself(emulator, upstream, bad_id):
    """Defence in depth: even a caller that skipped the URL converter sends nothing."""
    session = appservices.UserSession(emulator.url, "not-a-real-refresh-token")
    for call in (
        session.get_api_key,
        session.enable_api_key,
        session.disable_api_key,
        session.delete_api_key,
    ):
        with pytest.raises(appservices.InvalidKeyId) as caught:
            call(bad_id)
        assert "24 lower-case hexadecimal digits" in caught.value.message


# --- Forged and oversized headers -------------------------------------------------------------


@pytest.mark.parametrize(
    "host", ["evil.example", "testserver.evil.example", "testserver:80@evil.example"]
)
def test_a_forged_host_is_a_400_with_our_page(client, upstream, host):
    sign_in_staff(client)

    response = client.get(KEYS_URL, HTTP_HOST=host)

    assert response.status_code == 400
    assert BAD_REQUEST in response.content.decode()
    assert "evil" not in response.content.decode()


def test_a_forged_x_forwarded_host_steers_no_redirect(client, upstream):
    """USE_X_FORWARDED_HOST is off: the OIDC redirect_uri and every Location keep our host."""
    forged = {"HTTP_X_FORWARDED_HOST": "evil.example"}

    to_signin = client.get(KEYS_URL, **forged)
    to_provider = client.get(to_signin["Location"], **forged)

    assert "evil" not in to_signin["Location"]
    assert to_provider.status_code == 302
    assert "redirect_uri=http%3A%2F%2Ftestserver%2F" in to_provider["Location"]
    assert "evil" not in to_provider["Location"]


FORGED_USERS = {
    "HTTP_REMOTE_USER": "mallory",
    "HTTP_X_FORWARDED_USER": "mallory",
    "HTTP_X_FORWARDED_EMAIL": "mallory@example.com",
    "HTTP_X_AUTH_REQUEST_USER": "mallory",
    "HTTP_OIDC_CLAIM_GROUPS": STAFF,
}


@pytest.mark.parametrize("header", list(FORGED_USERS))
def test_a_forged_identity_header_signs_nobody_in_remote_user_mode(
    client, settings, upstream, header
):
    use_remote_user_mode(settings)

    response = client.get(KEYS_URL, **{header: FORGED_USERS[header]})

    assert response.status_code == 401
    assert "Sign-in failed" in response.content.decode()
    assert Session.objects.count() == 0
    assert not get_user_model().objects.exists()


def test_forged_identity_headers_sign_nobody_in_oidc_mode(client, upstream):
    response = client.get(KEYS_URL, **FORGED_USERS)

    assert response.status_code == 302
    assert response["Location"].startswith("/oidc/authenticate/")
    assert Session.objects.count() == 0
    assert not get_user_model().objects.exists()


BIG = "a" * 65536


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("HTTP_X_REQUEST_ID", BIG),
        ("HTTP_HX_CURRENT_URL", "http://testserver/" + BIG),
        ("HTTP_COOKIE", f"{django_settings.SESSION_COOKIE_NAME}={BIG}"),
        ("HTTP_USER_AGENT", BIG),
    ],
    ids=["x-request-id", "hx-current-url", "cookie", "user-agent"],
)
def test_a_64kb_header_changes_nothing_in_process(client, upstream, header, value):
    """What passes the front server is ignored: no echo, no session, no request upstream."""
    response = client.get(KEYS_URL, **{header: value})

    assert response.status_code == 302  # not signed in: to the sign-in, as without the header
    assert response["Location"].startswith("/oidc/authenticate/")
    assert re.fullmatch(r"[0-9a-f]{32}", response["X-Request-ID"])
    assert BIG not in str(response.headers) and BIG not in response.content.decode()
    assert Session.objects.count() == 0


@pytest.fixture(scope="module")
def gunicorn(tmp_path_factory):
    """keyadmin under gunicorn with its production config: where oversized headers stop."""
    port = free_port()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "KEYADMIN_BIND": f"127.0.0.1:{port}",
        "KEYADMIN_WORKERS": "1",
        "KEYADMIN_THREADS": "2",
        "KEYADMIN_SQLITE_PATH": str(tmp_path_factory.mktemp("gunicorn") / "db.sqlite3"),
    }
    config = ["-c", "gunicorn.conf.py"] if (ROOT / "gunicorn.conf.py").exists() else []
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", *config, "--bind", f"127.0.0.1:{port}", "keyadmin.wsgi"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            time.sleep(0.1)
    else:
        process.kill()
        raise RuntimeError("gunicorn did not start within 30 s")
    yield port
    process.terminate()
    process.wait(timeout=10)


def _raw(port: int, head: str) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall((head + "Connection: close\r\n\r\n").encode())
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer.decode("latin-1")


@pytest.mark.parametrize(
    ("head", "status", "says"),
    [
        (f"GET /keys/ HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: {BIG}\r\n", 431, "Too Large"),
        (f"GET /keys/ HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: a={BIG}\r\n", 431, "Too Large"),
        ("GET /keys/ HTTP/1.1\r\nHost: evil.example\r\n", 400, BAD_REQUEST),
    ],
    ids=["64kb-header", "64kb-cookie", "forged-host"],
)
def test_gunicorn_refuses_oversized_headers_and_django_a_forged_host(
    gunicorn, upstream, head, status, says
):
    answer = _raw(gunicorn, head)

    assert answer.startswith(f"HTTP/1.1 {status} "), answer[:200]
    assert says in answer


# --- CSRF, Origin, methods --------------------------------------------------------------------


def _csrf_client(user_credentials) -> Client:
    """A staff client that checks CSRF like a browser request would be, connected properly."""
    client = FormClient(enforce_csrf_checks=True)
    sign_in_staff(client)
    client.get(SIGNIN_URL)
    token = client.cookies[django_settings.CSRF_COOKIE_NAME].value
    email, password = user_credentials
    answer = client.post(
        SIGNIN_URL,
        {"provider": "local-userpass", "email": email, "password": password},
        headers={"X-CSRFToken": token},
    )
    assert answer.status_code == 302
    return client


STATE_CHANGES = [
    ("create", CREATE_URL, {"name": "csrf-probe"}),
    ("enable", key_url(A_KEY_ID, "enable"), row_post(A_KEY_ID, "k")),
    ("disable", key_url(A_KEY_ID, "disable"), row_post(A_KEY_ID, "k")),
    ("delete", key_url(A_KEY_ID, "delete"), row_post(A_KEY_ID, "k", confirm="1")),
    ("appservices-signin", SIGNIN_URL, {"provider": "anon-user"}),
    ("appservices-signout", "/appservices/sign-out/", {}),
    ("signout", "/sign-out/", {}),
]


@pytest.mark.parametrize(("what", "url", "data"), STATE_CHANGES, ids=[s[0] for s in STATE_CHANGES])
def test_a_post_without_the_csrf_token_is_a_403(
    emulator, user_credentials, upstream, what, url, data
):
    client = _csrf_client(user_credentials)
    upstream.start()

    response = client.post(url, data, headers=HTMX if what in ("create", "enable") else {})

    assert response.status_code == 403
    assert FORM_EXPIRED in response.content.decode()
    assert "appservices" in client.session  # nothing happened, signing out included


@pytest.mark.parametrize("origin", ["https://evil.example", "null", "http://testserver.evil"])
def test_a_foreign_origin_is_a_403_even_with_the_token(
    emulator, user_credentials, upstream, origin
):
    client = _csrf_client(user_credentials)
    token = client.cookies[django_settings.CSRF_COOKIE_NAME].value
    upstream.start()

    response = client.post(
        CREATE_URL, {"name": "origin-probe"}, headers={"X-CSRFToken": token, "Origin": origin}
    )

    assert response.status_code == 403
    assert FORM_EXPIRED in response.content.decode()


def test_the_same_origin_with_the_token_is_accepted(emulator, user_credentials, upstream):
    """The control for the two tests above: the refusals are about the token and the origin."""
    client = _csrf_client(user_credentials)
    token = client.cookies[django_settings.CSRF_COOKIE_NAME].value
    upstream.start()

    response = client.post(
        CREATE_URL,
        {"name": "origin-probe"},
        headers={"X-CSRFToken": token, "Origin": "http://testserver", **HTMX},
    )

    upstream.allowed = 1
    assert response.status_code == 200
    assert "secret-panel" in response.content.decode()


GET_REFUSED = [
    "/sign-out/",
    "/appservices/sign-out/",
    CREATE_URL,
    key_url(A_KEY_ID, "enable"),
    key_url(A_KEY_ID, "disable"),
    key_url(A_KEY_ID, "delete"),
]


@pytest.mark.parametrize("url", GET_REFUSED)
def test_get_on_a_state_changing_route_is_a_405(client, user_credentials, upstream, url):
    connected(client, user_credentials)
    upstream.start()

    response = client.get(url)

    assert response.status_code == 405
    assert response["Allow"] == "POST"
    assert "appservices" in client.session


# --- Session fixation -------------------------------------------------------------------------


def _plant_session(client) -> str:
    """A session an attacker could have planted in the browser before the staff member signs in."""
    planted = SessionStore()
    planted["planted"] = True
    planted.save()
    client.cookies[django_settings.SESSION_COOKIE_NAME] = planted.session_key
    return planted.session_key


def _session_key(client) -> str:
    return client.cookies[django_settings.SESSION_COOKIE_NAME].value


def test_the_development_sign_in_gives_a_new_session_key(client, settings, upstream):
    settings.DEBUG = True
    settings.KEYADMIN_SSO = "dev"
    planted = _plant_session(client)

    response = client.post("/sign-in/", {"name": "Sam Support"})

    assert response.status_code == 302
    assert _session_key(client) != planted
    assert not Session.objects.filter(session_key=planted).exists()


def test_a_remote_user_sign_in_gives_a_new_session_key(client, settings, upstream):
    use_remote_user_mode(settings)
    planted = _plant_session(client)

    response = client.get("/_test/whoami/", REMOTE_USER="7f3c-alice", OIDC_CLAIM_groups=STAFF)

    assert response.status_code == 200
    assert _session_key(client) != planted
    assert not Session.objects.filter(session_key=planted).exists()


def test_the_app_services_sign_in_gives_a_new_session_key(
    client, emulator, user_credentials, upstream
):
    sign_in_staff(client)
    before = _session_key(client)

    connect(client, user_credentials)

    upstream.allowed = emulator.request_count()  # the sign-in's own requests
    assert _session_key(client) != before
    assert not Session.objects.filter(session_key=before).exists()
    assert "appservices" in client.session
