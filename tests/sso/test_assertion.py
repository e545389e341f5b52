# ruff: noqa: F811 - pytest fixtures are imported, then named as test arguments
"""KEYADMIN_SSO=assertion: a signed JWT from an identity-aware proxy, verified on every request.

Keys are made here and served from a loopback JWKS (tests/sso/fixtures.py), signed as Cloudflare
Access (RS256) and Google IAP (ES256) sign theirs.
"""

from __future__ import annotations

import time

import jwt
import pytest
from django.contrib.sessions.models import Session
from django.test import Client

from keyadmin.models import AuditEvent, Staff
from keyadmin.sso import jwks as jwks_module
from tests.sso.fixtures import (
    AUDIENCE,
    ISSUER,
    OPERATORS,
    RSA_KID,
    STAFF,
    claims,
    forge,
    jwks_server,  # noqa: F401 - fixture
    keys,  # noqa: F401 - fixture
    mint,
    use_assertion_mode,
)

URL = "/_test/whoami/"
REMEMBER = "/_test/remember/"
HEADER = "Cf-Access-Jwt-Assertion"


@pytest.fixture
def assertion_mode(settings, jwks_server):
    use_assertion_mode(settings, jwks_server.url, HEADER)
    return jwks_server


def get(client, token: str | None, url: str = URL, **headers):
    if token is not None:
        headers[HEADER] = token
    return client.get(url, headers=headers)


def assert_refused(response, client, status: int = 401) -> None:
    assert response.status_code == status
    assert "sessionid" not in response.cookies or not response.cookies["sessionid"].value
    assert not Session.objects.exists()
    assert response.context is None or not response.context["user"].is_authenticated


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
def test_it_identifies_a_staff_member_from_a_valid_assertion(client, assertion_mode, keys, alg):
    response = get(client, mint(keys, alg, groups=[STAFF, OPERATORS]))

    assert response.status_code == 200
    body = response.json()
    assert body["issuer"] == ISSUER
    assert body["subject"] == "alice"
    assert body["roles"] == ["operator", "viewer"]
    staff = Staff.objects.get()
    assert (staff.issuer, staff.subject, staff.email) == (ISSUER, "alice", "alice@example.com")


def test_it_opens_a_session_when_a_page_keeps_something_in_it(client, assertion_mode, keys):
    response = get(client, mint(keys), url=REMEMBER)

    assert response.status_code == 200
    assert Session.objects.get().get_decoded()["remembered"] is True
    assert AuditEvent.objects.filter(action="signin", outcome="ok").count() == 1


def test_a_client_without_cookies_opens_no_session_and_no_sign_in_row(assertion_mode, keys):
    for _ in range(5):
        response = Client().get(URL, headers={HEADER: mint(keys)})
        assert response.status_code == 200
        assert response.json()["subject"] == "alice"
        assert "sessionid" not in response.cookies

    assert not Session.objects.exists()
    assert not AuditEvent.objects.filter(action="signin").exists()
    assert Staff.objects.count() == 1


def test_it_verifies_every_request_but_signs_in_once(client, assertion_mode, keys):
    assert get(client, mint(keys), url=REMEMBER).status_code == 200
    for _ in range(3):
        assert get(client, mint(keys)).status_code == 200

    assert AuditEvent.objects.filter(action="signin").count() == 1
    assert Session.objects.count() == 1


def test_it_ends_the_session_when_the_subject_changes(client, assertion_mode, keys):
    get(client, mint(keys, subject="alice"), url=REMEMBER)
    first_session = client.cookies["sessionid"].value

    response = get(client, mint(keys, subject="bob"), url=REMEMBER)

    assert response.status_code == 200
    assert response.json()["subject"] == "bob"
    assert client.cookies["sessionid"].value != first_session
    assert not Session.objects.filter(session_key=first_session).exists()
    signout = AuditEvent.objects.get(action="signout")
    assert signout.staff_subject == "alice"
    assert "another SSO subject" in signout.detail


def test_it_ends_the_session_when_the_assertion_disappears(client, assertion_mode, keys):
    assert get(client, mint(keys)).status_code == 200

    response = get(client, None)

    assert_refused(response, client)
    assert "could not tell who you are" in response.content.decode()


def test_it_answers_401_without_a_session_when_the_header_is_missing(client, assertion_mode):
    response = get(client, None)

    assert_refused(response, client)
    assert not Staff.objects.exists()


def test_it_follows_group_changes_on_every_request(client, assertion_mode, keys):
    assert get(client, mint(keys, groups=[STAFF, OPERATORS])).json()["roles"] == [
        "operator",
        "viewer",
    ]
    assert get(client, mint(keys, groups=[STAFF])).json()["roles"] == ["viewer"]

    response = get(client, mint(keys, groups=["contractors"]))

    assert_refused(response, client, status=403)
    assert AuditEvent.objects.filter(action="signin", outcome="denied").exists()


def test_it_refuses_identities_outside_the_allowed_groups(client, assertion_mode, keys):
    response = get(client, mint(keys, subject="mallory", groups=["everyone"]))

    assert_refused(response, client, status=403)
    assert "not on the keyadmin staff list" in response.content.decode()
    assert not Staff.objects.exists()
    denied = AuditEvent.objects.get(outcome="denied")
    assert (denied.action, denied.staff_subject) == ("signin", "mallory")


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"aud": "another-app"}, id="wrong-audience"),
        pytest.param({"iss": "https://evil.example"}, id="wrong-issuer"),
        pytest.param(
            {"exp": int(time.time()) - 3600, "iat": int(time.time()) - 7200}, id="expired"
        ),
        pytest.param({"exp": None}, id="no-exp"),
        pytest.param({"iat": None}, id="no-iat"),
        pytest.param({"iat": int(time.time()) + 3600}, id="issued-in-the-future"),
        pytest.param({"sub": ""}, id="empty-subject"),
    ],
)
def test_it_rejects_invalid_claims(client, assertion_mode, keys, overrides):
    response = get(client, mint(keys, **overrides))

    assert_refused(response, client)
    assert AuditEvent.objects.filter(action="signin", outcome="denied").count() == 1


def test_it_rejects_alg_none(client, assertion_mode):
    token = forge({"alg": "none", "kid": RSA_KID, "typ": "JWT"}, claims(), None)

    assert_refused(get(client, token), client)


def test_it_rejects_hs256_signed_with_the_public_key(client, assertion_mode, keys, settings):
    token = forge({"alg": "HS256", "kid": RSA_KID}, claims(), keys.rsa_public_pem())
    assert_refused(get(client, token), client)

    # Even if someone configured HS256, the JWKS key bound to the token is never an HMAC secret.
    settings.KEYADMIN_SSO_ALGORITHMS = ["RS256", "HS256"]
    assert_refused(get(client, token), client)


def test_it_rejects_a_token_signed_by_another_key(client, assertion_mode, keys):
    from cryptography.hazmat.primitives.asymmetric import rsa

    from tests.sso.fixtures import Keys

    stranger = Keys(rsa=rsa.generate_private_key(65537, 2048), ec=keys.ec)

    assert_refused(get(client, mint(stranger)), client)


def test_it_rejects_a_mismatched_key_type(client, assertion_mode, keys):
    # An ES256 header naming the RSA key's kid must not be verified with the RSA key.
    token = mint(keys, "ES256", kid=RSA_KID)

    assert_refused(get(client, token), client)


def test_it_rejects_garbage(client, assertion_mode):
    assert_refused(get(client, "not-a-jwt"), client)


def test_it_refetches_the_jwks_for_an_unknown_kid_at_most_once_a_minute(
    client, assertion_mode, keys, monkeypatch
):
    now = [1000.0]
    cache = jwks_module.cache_for(assertion_mode.url)
    monkeypatch.setattr(cache, "_clock", lambda: now[0])
    assert get(client, mint(keys)).status_code == 200
    assert len(assertion_mode.hits) == 1

    # A rotated-in key: unknown kid, one refetch, accepted.
    assertion_mode.document = {"keys": [*keys.jwks()["keys"], keys.jwk("rsa", "rsa-2")]}
    now[0] += 61
    assert get(client, mint(keys, kid="rsa-2")).status_code == 200
    assert len(assertion_mode.hits) == 2

    # A flood of unknown kids within the minute: refused without asking the provider again.
    for n in range(5):
        now[0] += 1
        assert get(client, mint(keys, kid=f"forged-{n}")).status_code == 401
    assert len(assertion_mode.hits) == 2

    now[0] += 60
    assert get(client, mint(keys, kid="forged-late")).status_code == 401
    assert len(assertion_mode.hits) == 3


def test_it_stops_trusting_a_withdrawn_key_after_the_max_age(
    client, assertion_mode, keys, monkeypatch
):
    now = [1000.0]
    cache = jwks_module.cache_for(assertion_mode.url)
    monkeypatch.setattr(cache, "_clock", lambda: now[0])
    assert get(client, mint(keys)).status_code == 200

    assertion_mode.document = {"keys": [keys.jwk("ec", "ec-1")]}
    now[0] += jwks_module.MAX_AGE_SECONDS + 1

    assert get(client, mint(keys)).status_code == 401


@pytest.mark.parametrize(
    "header", ["X-Forwarded-User", "X-Forwarded-Email", "Remote-User", "X-Auth-Request-User"]
)
def test_it_ignores_plain_identity_headers(client, assertion_mode, header):
    assert_refused(get(client, None, **{header: "alice"}), client)


def test_it_reads_an_oauth2_proxy_bearer_id_token(client, settings, jwks_server, keys):
    use_assertion_mode(settings, jwks_server.url, header="Authorization")

    ok = client.get(URL, headers={"Authorization": f"Bearer {mint(keys)}"})
    client.logout()
    basic = client.get(URL, headers={"Authorization": "Basic YWxpY2U6cHc="})

    assert ok.status_code == 200
    assert ok.json()["subject"] == "alice"
    assert basic.status_code == 401


def test_it_accepts_any_of_several_audiences(client, settings, jwks_server, keys):
    use_assertion_mode(settings, jwks_server.url, HEADER)
    settings.KEYADMIN_SSO_AUDIENCE = ["other", AUDIENCE]

    assert get(client, mint(keys)).status_code == 200


def test_it_reads_groups_from_a_nested_claim(client, settings, jwks_server, keys):
    use_assertion_mode(settings, jwks_server.url, HEADER)
    settings.KEYADMIN_SSO_GROUPS_CLAIM = "custom.groups"

    response = get(client, mint(keys, groups=None, custom={"groups": [STAFF, OPERATORS]}))

    assert response.json()["roles"] == ["operator", "viewer"]


def test_it_keeps_the_jwks_open_and_everything_else_closed(client, assertion_mode, settings):
    settings.KEYADMIN_APPSERVICES_BRIDGE = False

    assert client.get("/.well-known/keyadmin-jwks.json").status_code == 404  # bridge off
    assert client.get("/keys/").status_code == 401
    assert client.get("/audit/").status_code == 401


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"exp": int(time.time()) + 30 * 86400}, id="valid-for-a-month"),
        pytest.param(
            {"iat": int(time.time()) - 2 * 86400, "exp": int(time.time()) + 300},
            id="issued-two-days-ago",
        ),
    ],
)
def test_it_refuses_an_assertion_that_lives_too_long(client, assertion_mode, keys, overrides):
    response = get(client, mint(keys, **overrides))

    assert_refused(response, client)


def test_the_longest_assertion_lifetime_is_a_setting(client, assertion_mode, keys, settings):
    settings.KEYADMIN_SSO_MAX_ASSERTION_SECONDS = 600
    now = int(time.time())

    assert get(client, mint(keys, iat=now, exp=now + 600)).status_code == 200
    client.logout()
    assert_refused(get(client, mint(keys, iat=now, exp=now + 601)), client)


def test_it_checks_the_typ_when_one_is_configured(client, assertion_mode, keys, settings):
    settings.KEYADMIN_SSO_ASSERTION_TYP = "JWT"
    other_typ = jwt.encode(
        claims(), keys.rsa, algorithm="RS256", headers={"kid": RSA_KID, "typ": "at+jwt"}
    )

    assert_refused(get(client, other_typ), client)
    assert get(client, mint(keys)).status_code == 200  # PyJWT, like the proxies, says "JWT"
