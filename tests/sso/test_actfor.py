# ruff: noqa: F811 - pytest fixtures are imported, then named as test arguments
"""Acting for a customer: the checks on what staff type, and the Custom JWT keyadmin mints.

The tokens are verified the way App Services verifies them: RS256 against keyadmin's public JWKS
(the provider's JWK URI), HS256 against the app's signing key (a manual signing key).
"""

from __future__ import annotations

import dataclasses
import logging
import time

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from django.views.debug import ExceptionReporter

from keyadmin.appsfile import AppConfig, SigningSecret
from keyadmin.sso import actfor, bridge
from keyadmin.sso.actfor import ActForRefused, mint_act_for_token
from tests.sso.fixtures import keys  # noqa: F401 - fixture

STAFF_SUBJECT = "00u1staffsubject"
STAFF_ISSUER = "https://sso.example.com"
TICKET = "SUP-4711"
HS256_KEY = b"manual-signing-key-of-the-staging-app-0123456789"

PRODUCTION = AppConfig(
    key="shop-prod",
    name="Shop (production)",
    app_id="shop-prod-abcde",
    base_url="https://services.cloud.mongodb.com",
    allowed_hosts=("services.cloud.mongodb.com",),
    environment="production",
    act_for_enabled=True,
    customer_pattern=r"^cus_[A-Za-z0-9]+$",
    ticket_pattern=r"^SUP-\d+$",
    max_act_for_minutes=30,
)
STAGING = dataclasses.replace(
    PRODUCTION,
    key="shop-staging",
    app_id="shop-staging-fghij",
    environment="staging",
    customer_pattern=None,
    ticket_pattern=None,
    jwt_audience="shop-staging-audience",
    jwt_algorithm="HS256",
    jwt_hs256_secret=SigningSecret(HS256_KEY),
)


@pytest.fixture
def bridge_key(settings, keys):
    settings.KEYADMIN_BRIDGE_PRIVATE_KEY = keys.rsa_private_pem()
    settings.KEYADMIN_BRIDGE_KEY_ID = ""
    settings.KEYADMIN_APPSERVICES_BRIDGE = True  # so bridge.public_jwks() is what is served
    return keys


def verify_rs256(token: str, audience: str) -> dict:
    """As a provider with keyadmin's JWK URI would: the key named by `kid` in the served JWKS."""
    kid = jwt.get_unverified_header(token)["kid"]
    served = {key["kid"]: key for key in bridge.public_jwks()["keys"]}
    public_key = jwt.PyJWK(served[kid]).key
    return jwt.decode(token, public_key, algorithms=["RS256"], audience=audience)


def mint(app: AppConfig = PRODUCTION, customer: str = "cus_42", ticket: str = TICKET) -> str:
    return mint_act_for_token(app, customer, STAFF_SUBJECT, STAFF_ISSUER, ticket)


# --- The token ------------------------------------------------------------------------------


def test_an_rs256_token_names_the_customer_and_the_staff_member(bridge_key):
    before = int(time.time())

    token = mint()

    claims = verify_rs256(token, "shop-prod-abcde")
    assert claims["sub"] == "cus_42"
    assert claims["aud"] == "shop-prod-abcde"
    assert claims["iss"] == "keyadmin"
    assert claims["act"] == {"sub": STAFF_SUBJECT, "iss": STAFF_ISSUER}
    assert claims["keyadmin_ticket"] == TICKET
    assert before <= claims["iat"] <= int(time.time())
    assert 0 < claims["exp"] - claims["iat"] <= 300
    assert len(claims["jti"]) == 32 and int(claims["jti"], 16) >= 0
    assert set(claims) == {"sub", "aud", "iss", "iat", "exp", "jti", "act", "keyadmin_ticket"}
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "RS256"
    assert header["kid"] == bridge.public_jwks()["keys"][0]["kid"]


def test_the_rs256_kid_follows_the_configured_key_id(bridge_key, settings):
    settings.KEYADMIN_BRIDGE_KEY_ID = "bridge-2026"

    token = mint()

    assert jwt.get_unverified_header(token)["kid"] == "bridge-2026"
    assert verify_rs256(token, "shop-prod-abcde")["sub"] == "cus_42"


def test_an_rs256_token_fails_against_another_key(bridge_key):
    other = rsa.generate_private_key(65537, 2048).public_key()

    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(mint(), other, algorithms=["RS256"], audience="shop-prod-abcde")


def test_an_hs256_token_is_signed_with_the_apps_own_key():
    token = mint(STAGING, customer="customer-7")

    claims = jwt.decode(token, HS256_KEY, algorithms=["HS256"], audience="shop-staging-audience")
    assert claims["sub"] == "customer-7"
    assert claims["act"] == {"sub": STAFF_SUBJECT, "iss": STAFF_ISSUER}
    assert claims["keyadmin_ticket"] == TICKET
    assert 0 < claims["exp"] - claims["iat"] <= 300
    assert "kid" not in jwt.get_unverified_header(token)
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, HS256_KEY[::-1], algorithms=["HS256"], audience="shop-staging-audience")


def test_each_app_gets_its_own_audience(bridge_key):
    production = verify_rs256(mint(PRODUCTION), "shop-prod-abcde")
    staging_token = mint(STAGING)

    assert production["aud"] == "shop-prod-abcde"
    with pytest.raises(jwt.InvalidAudienceError):
        jwt.decode(staging_token, HS256_KEY, algorithms=["HS256"], audience="shop-staging-fghij")
    assert jwt.decode(
        staging_token, HS256_KEY, algorithms=["HS256"], audience="shop-staging-audience"
    )


def test_the_token_never_lives_longer_than_five_minutes(monkeypatch):
    monkeypatch.setattr(actfor, "TOKEN_SECONDS", 3600)

    claims = jwt.decode(
        mint(STAGING), HS256_KEY, algorithms=["HS256"], audience="shop-staging-audience"
    )

    assert claims["exp"] - claims["iat"] == 300


def test_every_token_has_its_own_jti():
    ids = {
        jwt.decode(
            mint(STAGING), HS256_KEY, algorithms=["HS256"], audience="shop-staging-audience"
        )["jti"]
        for _ in range(1000)
    }

    assert len(ids) == 1000


def test_the_token_carries_the_values_as_checked(bridge_key):
    claims = verify_rs256(mint(customer="  cus_42\t", ticket=" SUP-1 "), "shop-prod-abcde")

    assert (claims["sub"], claims["keyadmin_ticket"]) == ("cus_42", "SUP-1")


# --- Nothing else can mint one --------------------------------------------------------------


@pytest.mark.parametrize(
    ("app", "customer", "ticket", "reason"),
    [
        (dataclasses.replace(PRODUCTION, act_for_enabled=False), "cus_42", TICKET, "disabled"),
        (PRODUCTION, "cus_42; cus_43", TICKET, "customer-pattern"),
        (PRODUCTION, "", TICKET, "customer-missing"),
        (PRODUCTION, "cus_42", "because", "ticket-pattern"),
        (STAGING, "cus\u200b42", TICKET, "customer-invalid"),
    ],
    ids=["disabled", "customer", "no-customer", "ticket", "invisible"],
)
def test_minting_repeats_every_check(bridge_key, app, customer, ticket, reason):
    with pytest.raises(ActForRefused) as refused:
        mint(app, customer=customer, ticket=ticket)

    assert (
        refused.value.reason
        == {
            "disabled": actfor.DISABLED,
            "customer-pattern": actfor.CUSTOMER_PATTERN,
            "customer-missing": actfor.CUSTOMER_MISSING,
            "ticket-pattern": actfor.TICKET_PATTERN,
            "customer-invalid": actfor.CUSTOMER_INVALID,
        }[reason]
    )


def test_minting_needs_the_staff_members_identity():
    for subject, issuer in (("", STAFF_ISSUER), (STAFF_SUBJECT, "")):
        with pytest.raises(ValueError, match="subject and issuer"):
            mint_act_for_token(STAGING, "cus_42", subject, issuer, TICKET)


def test_an_hs256_app_without_its_key_cannot_mint():
    keyless = dataclasses.replace(STAGING, jwt_hs256_secret=None)

    with pytest.raises(ValueError, match="has no signing key"):
        mint(keyless)


def test_the_jwks_is_needed_only_by_apps_that_act_with_rs256(settings):
    settings.KEYADMIN_APPS = (STAGING, dataclasses.replace(PRODUCTION, act_for_enabled=False))
    assert actfor.uses_bridge_key() is False

    settings.KEYADMIN_APPS = (STAGING, PRODUCTION)
    assert actfor.uses_bridge_key() is True


# --- What staff typed -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "reason", "message"),
    [
        ("", actfor.CUSTOMER_MISSING, "Enter the id of the customer to act for."),
        ("   ", actfor.CUSTOMER_MISSING, "Enter the id of the customer to act for."),
        ("cus_4\x002", actfor.CUSTOMER_INVALID, "contains control or invisible characters"),
        ("cus_4\n2", actfor.CUSTOMER_INVALID, "contains control or invisible characters"),
        ("cus_\u200b42", actfor.CUSTOMER_INVALID, "contains control or invisible characters"),
        ("cus_42\u202e", actfor.CUSTOMER_INVALID, "contains control or invisible characters"),
        ("cus_4\u20282", actfor.CUSTOMER_INVALID, "contains control or invisible characters"),
        ("cus_" + "a" * 252, actfor.CUSTOMER_TOO_LONG, "too long (at most 255 characters)"),
        (
            "CUS_42",
            actfor.CUSTOMER_PATTERN,
            "That customer id does not match the pattern this app expects (^cus_[A-Za-z0-9]+$).",
        ),
        ("cus_42 x", actfor.CUSTOMER_PATTERN, "does not match the pattern"),
    ],
    ids=[
        "empty",
        "blank",
        "nul",
        "newline",
        "zero-width",
        "bidi",
        "line-sep",
        "long",
        "pattern",
        "trailing",
    ],
)
def test_a_customer_id_is_refused_with_a_reason(value, reason, message):
    with pytest.raises(ActForRefused) as refused:
        actfor.check_customer_id(PRODUCTION, value)

    assert refused.value.reason == reason
    assert message in refused.value.message
    assert str(refused.value) == refused.value.message


def test_a_customer_id_of_255_characters_passes():
    longest = "cus_" + "a" * 251

    assert actfor.check_customer_id(PRODUCTION, longest) == longest


def test_a_pattern_must_match_the_whole_value():
    unanchored = dataclasses.replace(PRODUCTION, customer_pattern=r"cus_[0-9]+")

    assert actfor.check_customer_id(unanchored, "cus_42") == "cus_42"
    with pytest.raises(ActForRefused):
        actfor.check_customer_id(unanchored, "cus_42-and-more")


def test_without_a_pattern_any_plain_id_passes():
    assert actfor.check_customer_id(STAGING, "  auth0|6571e2  ") == "auth0|6571e2"


@pytest.mark.parametrize(
    ("value", "reason", "message"),
    [
        ("", actfor.TICKET_MISSING, "Give the reason or ticket reference"),
        ("SUP-1\r\n", None, None),  # outer line ends are trimmed, not refused
        ("SUP-\x1b[2J1", actfor.TICKET_INVALID, "contains control or invisible characters"),
        ("SUP-" + "1" * 252, actfor.TICKET_TOO_LONG, "too long (at most 255 characters)"),
        (
            "sup-12",
            actfor.TICKET_PATTERN,
            r"That ticket reference does not match the pattern this app expects (^SUP-\d+$).",
        ),
    ],
    ids=["empty", "trimmed", "escape", "long", "pattern"],
)
def test_a_ticket_is_refused_with_a_reason(value, reason, message):
    if reason is None:
        assert actfor.check_ticket(PRODUCTION, value) == "SUP-1"
        return
    with pytest.raises(ActForRefused) as refused:
        actfor.check_ticket(PRODUCTION, value)

    assert refused.value.reason == reason
    assert message in refused.value.message


def test_without_a_pattern_a_reason_in_words_is_a_ticket():
    assert actfor.check_ticket(STAGING, "Customer called: lost key") == "Customer called: lost key"


@pytest.mark.parametrize(
    ("minutes", "expected"),
    [(None, 15), ("", 15), (1, 1), (30, 30), ("20", 20), (" 5 ", 5)],
)
def test_a_duration_within_the_apps_maximum_passes(minutes, expected):
    assert actfor.check_duration(PRODUCTION, minutes) == expected


@pytest.mark.parametrize("minutes", [0, -5, 31, "31", "a while", True, "1.5"])
def test_a_duration_outside_the_apps_maximum_is_refused(minutes):
    with pytest.raises(ActForRefused) as refused:
        actfor.check_duration(PRODUCTION, minutes)

    assert refused.value.reason == actfor.DURATION_INVALID
    assert refused.value.message == "Choose a duration of 1 to 30 minutes."


@pytest.mark.parametrize(
    "check",
    [
        lambda app: actfor.check_customer_id(app, "cus_42"),
        lambda app: actfor.check_ticket(app, TICKET),
        lambda app: actfor.check_duration(app, 15),
    ],
    ids=["customer", "ticket", "duration"],
)
def test_every_check_refuses_an_app_that_does_not_allow_acting(check):
    closed = dataclasses.replace(PRODUCTION, act_for_enabled=False)

    with pytest.raises(ActForRefused) as refused:
        check(closed)

    assert refused.value.reason == actfor.DISABLED
    assert refused.value.message == "This app does not allow acting for customers."


# --- Never shown ----------------------------------------------------------------------------


def test_the_signing_key_and_the_token_are_never_logged_or_shown(bridge_key, caplog):
    caplog.set_level(logging.DEBUG)

    tokens = [mint(PRODUCTION), mint(STAGING)]

    logged = "\n".join(
        f"{record.getMessage()} {record.args!r} {record.__dict__!r}" for record in caplog.records
    )
    for secret in (*tokens, HS256_KEY.decode(), bridge_key.rsa_private_pem()[40:100]):
        assert secret not in logged
    assert HS256_KEY.decode() not in repr(STAGING)
    assert HS256_KEY.decode() not in repr(STAGING.jwt_hs256_secret)


def test_an_error_report_from_inside_minting_shows_neither_key_nor_token(monkeypatch, rf):
    def failing_encode(claims, key, **kwargs):
        raise RuntimeError("the signer broke")

    monkeypatch.setattr(actfor.jwt, "encode", failing_encode)
    with pytest.raises(RuntimeError) as raised:
        mint(STAGING)
    reporter = ExceptionReporter(rf.get("/"), RuntimeError, raised.value, raised.tb)

    frames = {frame["function"]: dict(frame["vars"]) for frame in reporter.get_traceback_frames()}
    page = reporter.get_traceback_html()

    assert "the signer broke" in page
    assert frames["mint_act_for_token"]["secret"] == "********************"
    assert frames["failing_encode"]["key"] == "********************"  # a callee's `key` too
    assert "SUP-4711" in frames["mint_act_for_token"]["ticket"]  # the report does show locals
    assert HS256_KEY.decode() not in page


def test_a_token_with_the_longest_values_stays_within_app_services_limit(bridge_key):
    longest = "cus_" + "a" * 251

    token = mint(dataclasses.replace(PRODUCTION, ticket_pattern=None), longest, "T" * 255)

    assert len(token) <= actfor.MAX_TOKEN_LENGTH
    assert verify_rs256(token, "shop-prod-abcde")["sub"] == longest


def test_a_token_app_services_would_refuse_for_its_length_is_not_minted():
    # Each "é" becomes "\u00e9" in the token's JSON: 255 of them in the ticket overflow it.
    with pytest.raises(ActForRefused) as refused:
        mint(STAGING, customer="é" * 255, ticket="é" * 255)

    assert refused.value.reason == actfor.TOKEN_TOO_LONG
    assert "shorten the ticket reference" in refused.value.message


def test_the_customer_field_is_labelled_as_the_app_says():
    assert actfor.customer_label(PRODUCTION) == "Customer id"
    assert actfor.customer_label(dataclasses.replace(PRODUCTION, customer_label="Account")) == (
        "Account"
    )


def test_keyadmins_jwk_uri_serves_the_key_for_rs256_acting_without_the_bridge(
    client, settings, keys
):
    settings.ROOT_URLCONF = "tests.sso.urls"
    settings.KEYADMIN_APPSERVICES_BRIDGE = False
    settings.KEYADMIN_BRIDGE_PRIVATE_KEY = keys.rsa_private_pem()
    settings.KEYADMIN_BRIDGE_KEY_ID = ""
    settings.KEYADMIN_APPS = (STAGING,)  # HS256 only: nothing to publish
    assert client.get("/.well-known/keyadmin-jwks.json").status_code == 404

    settings.KEYADMIN_APPS = (STAGING, PRODUCTION)
    served = jwt.PyJWKSet.from_dict(client.get("/.well-known/keyadmin-jwks.json").json())

    token = mint(PRODUCTION)
    key = served[jwt.get_unverified_header(token)["kid"]]
    assert jwt.decode(token, key, algorithms=["RS256"], audience="shop-prod-abcde")["sub"] == (
        "cus_42"
    )
