# ruff: noqa: F811 - pytest fixtures are imported, then named as test arguments
"""The App Services custom-token bridge, end to end against the local App Services server.

keyadmin serves its public JWKS from live_server; a local App Services server started with
`--custom-token-jwks-url` pointing there verifies the JWTs keyadmin mints at staff sign-in.
"""

from __future__ import annotations

import html
import logging
import time

import jwt
import pytest
from django.contrib.sessions.models import Session
from django.test import Client, RequestFactory

from keyadmin.appservices.connection import get_connection
from keyadmin.models import AuditEvent
from keyadmin.sso import bridge
from tests.conftest import APP_ID, start_emulator
from tests.sso.fixtures import (  # noqa: F401 - fixtures
    STAFF,
    jwks_server,
    keys,
    mint,
    use_assertion_mode,
    use_remote_user_mode,
)
from tests.support import point_keyadmin_at

pytestmark = pytest.mark.django_db(transaction=True)

JWKS_PATH = "/.well-known/keyadmin-jwks.json"


@pytest.fixture
def bridge_on(settings, keys):
    settings.KEYADMIN_APPSERVICES_BRIDGE = True
    settings.KEYADMIN_BRIDGE_PRIVATE_KEY = keys.rsa_private_pem()
    settings.KEYADMIN_BRIDGE_KEY_ID = ""
    settings.KEYADMIN_BRIDGE_AUDIENCE = ""
    settings.KEYADMIN_BRIDGE_TOKEN_SECONDS = 120
    settings.ROOT_URLCONF = "tests.sso.urls"
    return settings


@pytest.fixture(scope="module")
def bridge_server(live_server, tmp_path_factory):
    """A local App Services server that trusts keyadmin's live JWKS for custom-token logins."""
    handle = start_emulator(
        tmp_path_factory.mktemp("bridge") / "appservices.sqlite3",
        "--custom-token-jwks-url",
        f"{live_server.url}{JWKS_PATH}",
        "--custom-token-metadata",
        "name=name,email=email",
    )
    yield handle
    handle.process.terminate()
    handle.process.wait(timeout=10)


@pytest.fixture
def upstream(bridge_server, settings):
    point_keyadmin_at(settings, bridge_server.url)
    from keyadmin import appservices

    appservices.forget_locations()
    return bridge_server


def session_connection(client):
    request = RequestFactory().get("/")
    request.session = client.session
    return get_connection(request)


def test_it_serves_only_the_public_key(client, bridge_on):
    response = client.get(JWKS_PATH)

    assert response.status_code == 200
    assert response["Cache-Control"] == "public, max-age=300"
    (key,) = response.json()["keys"]
    assert (key["kty"], key["alg"], key["use"]) == ("RSA", "RS256", "sig")
    assert key["kid"]
    assert not {"d", "p", "q", "dp", "dq", "qi"} & set(key)
    assert "sessionid" not in response.cookies


def test_it_serves_the_previous_key_during_a_rotation(client, bridge_on, keys):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    old = rsa.generate_private_key(65537, 2048).public_key()
    bridge_on.KEYADMIN_BRIDGE_PREVIOUS_PUBLIC_KEY = old.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()

    kids = [key["kid"] for key in client.get(JWKS_PATH).json()["keys"]]

    assert len(kids) == 2 and kids[0] != kids[1]


def test_the_jwks_is_404_when_the_bridge_is_off(client, settings):
    settings.ROOT_URLCONF = "tests.sso.urls"
    settings.KEYADMIN_APPSERVICES_BRIDGE = False

    assert client.get(JWKS_PATH).status_code == 404


def test_a_minted_token_has_the_documented_shape(client, bridge_on):
    token = bridge.mint("7f3c-alice")
    jwks = jwt.PyJWKSet.from_dict(client.get(JWKS_PATH).json())

    header = jwt.get_unverified_header(token)
    key = jwks[header["kid"]]
    claims = jwt.decode(token, key, algorithms=["RS256"], audience=APP_ID)
    assert (header["alg"], header["typ"]) == ("RS256", "JWT")
    assert claims["sub"] == "7f3c-alice"
    assert claims["aud"] == APP_ID
    assert 0 < claims["exp"] - claims["iat"] <= 300
    assert claims["exp"] <= time.time() + 300
    assert len(token) <= 2048
    assert not {"name", "email"} & set(claims)
    named = jwt.decode(
        bridge.mint("7f3c-alice", name="Alice", email="alice@example.com"),
        key,
        algorithms=["RS256"],
        audience=APP_ID,
    )
    assert (named["name"], named["email"]) == ("Alice", "alice@example.com")


def test_sso_sign_in_connects_to_app_services_without_a_password(
    client, bridge_on, upstream, caplog, monkeypatch
):
    use_remote_user_mode(bridge_on)
    caplog.set_level(logging.DEBUG)
    minted = []
    real_mint = bridge.mint

    def spy(subject, **claims):
        minted.append(real_mint(subject, **claims))
        return minted[-1]

    monkeypatch.setattr(bridge, "mint", spy)
    environ = {"REMOTE_USER": "7f3c-alice", "OIDC_CLAIM_groups": STAFF}

    assert client.get("/_test/whoami/", **environ).status_code == 200
    first = session_connection(client)
    assert client.get("/keys/", **environ).status_code == 200  # the key list, no sign-in page
    client.get("/_test/whoami/", **{**environ, "REMOTE_USER": "9a1d-bob"})
    second = session_connection(client)
    client.get("/_test/whoami/", **environ)
    again = session_connection(client)

    assert (first.provider, first.can_manage_keys) == ("custom-token", True)
    assert second.user_id != first.user_id  # one App Services user per SSO subject
    assert again.user_id == first.user_id
    assert AuditEvent.objects.filter(action="appservices-signin", outcome="ok").count() == 3
    # No token minted or received is kept anywhere but the encrypted session.
    stored = " ".join(str(v) for row in AuditEvent.objects.values_list() for v in row)
    sessions = " ".join(Session.objects.values_list("session_data", flat=True))
    for secret in [*minted, first._refresh_token, again._refresh_token]:
        assert secret not in stored
        assert secret not in sessions
        assert secret not in caplog.text


REFUSED = (
    "This App Services app does not accept keyadmin's sign-in tokens (custom JWT provider off "
    "or misconfigured)."
)


def signin_page(client, **environ) -> str:
    response = client.get("/appservices/sign-in/", **environ)
    assert response.status_code == 200
    return html.unescape(response.content.decode())


def test_a_refused_bridge_still_signs_the_staff_member_in(client, bridge_on, upstream):
    use_remote_user_mode(bridge_on)
    bridge_on.KEYADMIN_BRIDGE_AUDIENCE = "another-app"  # App Services answers 401 unauthorized
    environ = {"REMOTE_USER": "7f3c-alice", "OIDC_CLAIM_groups": STAFF}

    response = client.get("/_test/whoami/", **environ)

    assert response.status_code == 200
    assert session_connection(client) is None
    failed = AuditEvent.objects.get(action="appservices-signin")
    assert (failed.outcome, failed.status) == ("failed", 401)
    assert failed.detail == "SignInTokenRefused"
    assert REFUSED in signin_page(client, **environ)  # where the staff member lands
    assert REFUSED not in signin_page(client, **environ)  # said once


def test_an_app_without_the_custom_jwt_provider_says_so(client, bridge_on, emulator):
    """The shared local server has no custom-token provider: 401 InvalidSession "unauthorized"."""
    from keyadmin import appservices

    appservices.forget_locations()
    use_remote_user_mode(bridge_on)
    environ = {"REMOTE_USER": "7f3c-alice", "OIDC_CLAIM_groups": STAFF}

    client.get("/_test/whoami/", **environ)

    assert session_connection(client) is None
    failed = AuditEvent.objects.get(action="appservices-signin")
    assert (failed.outcome, failed.status, failed.detail) == ("failed", 401, "SignInTokenRefused")
    page = signin_page(client, **environ)
    assert REFUSED in page
    assert "did not accept those credentials" not in page


def test_the_bridge_carries_the_staff_name_and_email_into_the_profile(client, bridge_on, upstream):
    use_remote_user_mode(bridge_on)
    environ = {
        "REMOTE_USER": "5b2e-carol",
        "OIDC_CLAIM_groups": STAFF,
        "OIDC_CLAIM_name": "Carol Support",
        "OIDC_CLAIM_email": "carol@example.com",
    }

    client.get("/_test/whoami/", **environ)

    connection = session_connection(client)
    assert (connection.email, connection.label) == ("carol@example.com", "carol@example.com")
    assert "carol@example.com" in signin_page(client, **environ)  # "Connected now" shows who


def test_the_development_sign_in_uses_the_bridge_too(client, bridge_on, upstream):
    bridge_on.DEBUG = True
    bridge_on.KEYADMIN_SSO = "dev"

    client.post("/sign-in/", {"name": "Sam Support"})

    assert session_connection(client).provider == "custom-token"


def test_behind_a_proxy_the_first_keys_page_opens_the_session_and_connects(
    client, bridge_on, upstream, jwks_server, keys
):
    use_assertion_mode(bridge_on, jwks_server.url, "Cf-Access-Jwt-Assertion")
    assertion = {"HTTP_CF_ACCESS_JWT_ASSERTION": mint(keys)}

    first = client.get("/keys/", **assertion)
    assert first.status_code == 302
    assert first["Location"].startswith("/keys/?session-check=")  # tests/sso/test_cookieless.py
    assert session_connection(client) is None  # connected once the cookie comes back
    assert client.get(first["Location"], **assertion).status_code == 200  # the key list
    assert session_connection(client).provider == "custom-token"


def test_behind_a_proxy_a_client_without_cookies_costs_no_app_services_sign_in(
    bridge_on, upstream, jwks_server, keys
):
    use_assertion_mode(bridge_on, jwks_server.url, "Cf-Access-Jwt-Assertion")
    assertion = {"HTTP_CF_ACCESS_JWT_ASSERTION": mint(keys)}
    upstream.reset_stats()

    for _ in range(3):
        assert Client().get("/_test/whoami/", **assertion).status_code == 200

    assert upstream.request_count() == 0
    assert not Session.objects.exists()
