# ruff: noqa: F811 - pytest fixtures are imported, then named as test arguments
"""KEYADMIN_SSO=oidc: keyadmin's own OpenID Connect login.

The browser tests log in through a real provider (npm oidc-provider on loopback, PKCE required)
in Debian's Chromium. The ID-token checks are also tested one by one with keys made here.
"""

from __future__ import annotations

import json
import os
import time
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
from django.contrib.sessions.models import Session
from django.core.exceptions import SuspiciousOperation
from django.test import RequestFactory

from keyadmin.models import AuditEvent, Staff
from keyadmin.sso import jwks as jwks_module
from keyadmin.sso import session as staff_session
from keyadmin.sso.oidc import StaffOIDCBackend
from tests.browser.conftest import CHROMIUM_ARGS
from tests.sso.fixtures import (
    RSA_KID,
    STAFF,
    forge,
    jwks_server,  # noqa: F401 - fixture
    keys,  # noqa: F401 - fixture
    oidc_provider,  # noqa: F401 - fixture
    use_oidc_mode,
    use_roles,
)

WHOAMI = "/_test/whoami/"


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {
        **browser_type_launch_args,
        "headless": True,
        "args": CHROMIUM_ARGS,
        "executable_path": os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"),
    }


def log_in_at_provider(page, login: str) -> None:
    # oidc-provider's development pages: any login name, any password, then consent.
    page.fill("input[name=login]", login)
    page.fill("input[name=password]", "not-checked")
    page.locator("form:has(input[name=prompt][value=login]) button[type=submit]").click()
    page.locator("form:has(input[name=prompt][value=consent]) button[type=submit]").click()


# --- in the browser, against the real provider ---


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_it_logs_in_with_the_code_flow_pkce_and_a_nonce(page, live_server, oidc_provider, settings):
    use_oidc_mode(settings, oidc_provider)
    # Someone else registered with alice's email: email must never decide who you are.
    squatter = Staff.objects.create(
        user=_user("squatter"),
        issuer=oidc_provider.issuer,
        subject="squatter",
        email="alice@example.com",
        groups=[STAFF],
    )
    authorize = []
    page.on(
        "request",
        lambda request: (
            request.url.startswith(oidc_provider.endpoint("/auth?"))
            and authorize.append(request.url)
        ),
    )

    page.goto(f"{live_server.url}{WHOAMI}")
    log_in_at_provider(page, "alice")
    page.wait_for_url(f"{live_server.url}{WHOAMI}")

    params = {name: values[0] for name, values in parse_qs(urlsplit(authorize[0]).query).items()}
    assert params["response_type"] == "code"
    assert params["code_challenge_method"] == "S256"
    assert len(params["code_challenge"]) == 43  # base64url SHA-256, never the verifier itself
    assert len(params["nonce"]) >= 32 and len(params["state"]) >= 32
    assert params["redirect_uri"] == f"{live_server.url}/oidc/callback/"
    assert "openid" in params["scope"].split()
    who = json.loads(page.inner_text("body"))
    assert (who["issuer"], who["subject"], who["name"]) == (
        oidc_provider.issuer,
        "alice",
        "Alice Operator",
    )
    assert who["roles"] == ["operator", "viewer"]
    alice = Staff.objects.get(subject="alice")
    assert alice.user_id != squatter.user_id
    assert AuditEvent.objects.filter(action="signin", outcome="ok").count() == 1

    # RP-initiated logout: the provider's end_session, then back to our signed-out page.
    request = RequestFactory().get("/", HTTP_HOST=urlsplit(live_server.url).netloc)
    url = staff_session.signout_url(request)
    assert url.startswith(oidc_provider.endpoint("/session/end?"))
    page.goto(url)
    page.click("button[name=logout]")
    page.wait_for_url(f"{live_server.url}/signed-out/")
    assert "signed out of keyadmin and of the company sign-on" in page.inner_text("main")


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_it_refuses_a_provider_account_outside_the_staff_groups(
    page, live_server, oidc_provider, settings
):
    use_oidc_mode(settings, oidc_provider)

    page.goto(f"{live_server.url}{WHOAMI}")
    log_in_at_provider(page, "mallory")  # same email as alice, no staff group
    page.wait_for_url(f"{live_server.url}/oidc/callback/**")

    assert "not on the keyadmin staff list" in page.inner_text("main")
    assert not Staff.objects.exists()
    assert not any("_auth_user_id" in session.get_decoded() for session in Session.objects.all())
    denied = AuditEvent.objects.get(outcome="denied")
    assert (denied.action, denied.staff_subject) == ("signin", "mallory")


# --- without a browser ---


@pytest.mark.django_db
def test_anonymous_staff_pages_start_the_login(client, settings):
    _oidc_settings(settings, "https://idp.example.com")

    page = client.get(WHOAMI)
    fragment = client.get(
        WHOAMI, headers={"HX-Request": "true", "HX-Current-URL": "http://testserver/keys/?q=ci"}
    )

    assert page["Location"] == "/oidc/authenticate/?next=%2F_test%2Fwhoami%2F"
    assert fragment["HX-Redirect"] == "/oidc/authenticate/?next=%2Fkeys%2F%3Fq%3Dci"


@pytest.mark.django_db
def test_the_login_start_sends_pkce_and_nonce(client, settings):
    _oidc_settings(settings, "https://idp.example.com")

    response = client.get("/oidc/authenticate/?next=/keys/")

    query = parse_qs(urlsplit(response["Location"]).query)
    assert response["Location"].startswith("https://idp.example.com/auth?")
    assert query["code_challenge_method"] == ["S256"]
    assert query["nonce"] and query["state"]
    state = client.session["oidc_states"][query["state"][0]]
    assert state["code_verifier"] and state["nonce"] == query["nonce"][0]


@pytest.mark.django_db
def test_a_forged_callback_gets_no_session(client, settings):
    _oidc_settings(settings, "https://idp.example.com")

    response = client.get("/oidc/callback/?code=stolen&state=never-issued")
    mixed_up = client.get("/oidc/callback/?code=x&state=y&iss=https://evil.example")

    assert response.status_code == 403
    assert mixed_up.status_code == 403
    assert "_auth_user_id" not in client.session
    assert AuditEvent.objects.filter(action="signin", outcome="failed").count() == 2


@pytest.mark.django_db
def test_the_oidc_routes_are_closed_in_other_modes(client, settings):
    use_roles(settings)
    settings.KEYADMIN_SSO = ""

    assert client.get("/oidc/authenticate/").status_code == 404
    assert client.get("/oidc/callback/?code=x&state=y").status_code == 404


@pytest.mark.django_db
def test_the_backend_answers_nobody_outside_oidc_mode(settings):
    settings.KEYADMIN_SSO = "dev"

    assert StaffOIDCBackend().authenticate(RequestFactory().get("/")) is None


class TestIdTokenChecks:
    ISSUER = "https://idp.example.com"

    @pytest.fixture
    def backend(self, settings, jwks_server):
        _oidc_settings(settings, self.ISSUER, jwks_url=jwks_server.url)
        jwks_module.forget_all()
        return StaffOIDCBackend()

    def token(self, keys, alg="RS256", **overrides):
        now = int(time.time())
        claims = {
            "iss": self.ISSUER,
            "aud": "keyadmin",
            "sub": "alice",
            "nonce": "n-123",
            "iat": now,
            "exp": now + 300,
            **overrides,
        }
        claims = {name: value for name, value in claims.items() if value is not None}
        key = keys.rsa if alg == "RS256" else keys.ec
        kid = "rsa-1" if alg == "RS256" else "ec-1"
        return jwt.encode(claims, key, algorithm=alg, headers={"kid": kid})

    @pytest.mark.parametrize("alg", ["RS256", "ES256"])
    def test_it_accepts_a_good_token(self, backend, keys, alg):
        assert backend.verify_token(self.token(keys, alg), nonce="n-123")["sub"] == "alice"

    @pytest.mark.parametrize(
        "overrides",
        [
            pytest.param({"nonce": "replayed"}, id="nonce-mismatch"),
            pytest.param({"nonce": None}, id="no-nonce"),
            pytest.param({"aud": "another-client"}, id="wrong-audience"),
            pytest.param({"aud": ["keyadmin", "other"]}, id="several-audiences-no-azp"),
            pytest.param({"iss": "https://evil.example"}, id="wrong-issuer"),
            pytest.param({"exp": int(time.time()) - 600}, id="expired"),
            pytest.param({"iat": None}, id="no-iat"),
        ],
    )
    def test_it_rejects(self, backend, keys, overrides):
        with pytest.raises(SuspiciousOperation):
            backend.verify_token(self.token(keys, **overrides), nonce="n-123")

    def test_it_rejects_alg_none_and_hs256_with_the_public_key(self, backend, keys):
        payload = {
            "iss": self.ISSUER,
            "aud": "keyadmin",
            "sub": "alice",
            "nonce": "n-123",
            "iat": int(time.time()),
            "exp": int(time.time()) + 300,
        }
        for token in (
            forge({"alg": "none", "kid": RSA_KID}, payload, None),
            forge({"alg": "HS256", "kid": RSA_KID}, payload, keys.rsa_public_pem()),
        ):
            with pytest.raises(SuspiciousOperation):
                backend.verify_token(token, nonce="n-123")

    def test_an_empty_expected_nonce_never_matches(self, backend, keys):
        with pytest.raises(SuspiciousOperation):
            backend.verify_token(self.token(keys, nonce=None), nonce=None)


def _oidc_settings(settings, issuer: str, jwks_url: str | None = None) -> None:
    use_roles(settings)
    settings.KEYADMIN_SSO = "oidc"
    settings.KEYADMIN_OIDC_ISSUER = issuer
    settings.KEYADMIN_OIDC_CLIENT_ID = "keyadmin"
    settings.KEYADMIN_OIDC_CLIENT_SECRET = "secret"
    settings.KEYADMIN_OIDC_AUTHORIZATION_ENDPOINT = f"{issuer}/auth"
    settings.KEYADMIN_OIDC_TOKEN_ENDPOINT = f"{issuer}/token"
    settings.KEYADMIN_OIDC_USERINFO_ENDPOINT = f"{issuer}/me"
    settings.KEYADMIN_OIDC_JWKS_ENDPOINT = jwks_url or f"{issuer}/jwks"
    settings.KEYADMIN_OIDC_END_SESSION_ENDPOINT = f"{issuer}/session/end"
    settings.KEYADMIN_OIDC_SCOPES = "openid email profile groups"


def _user(name: str):
    from django.contrib.auth import get_user_model

    return get_user_model().objects.create_user(username=f"sso:{name}")
