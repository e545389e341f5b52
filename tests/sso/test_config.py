"""Start-up checks: a sign-in mode with missing or unsafe settings never starts."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured

from keyadmin.sso import config
from tests.conftest import ROOT

ROLES = {
    "KEYADMIN_SSO_ALLOWED_GROUPS": ["staff"],
    "KEYADMIN_ROLE_GROUPS_VIEWER": ["staff"],
    "KEYADMIN_SSO_ALGORITHMS": ["RS256", "ES256"],
}
ASSERTION = {
    "KEYADMIN_SSO": "assertion",
    "KEYADMIN_SSO_ASSERTION_HEADER": "Cf-Access-Jwt-Assertion",
    "KEYADMIN_SSO_JWKS_URL": "https://team.cloudflareaccess.com/cdn-cgi/access/certs",
    "KEYADMIN_SSO_ISSUER": "https://team.cloudflareaccess.com",
    "KEYADMIN_SSO_AUDIENCE": ["aud-tag"],
    **ROLES,
}
OIDC = {
    "KEYADMIN_SSO": "oidc",
    "KEYADMIN_OIDC_ISSUER": "https://idp.example.com",
    "KEYADMIN_OIDC_CLIENT_ID": "keyadmin",
    "KEYADMIN_OIDC_CLIENT_SECRET": "secret",
    "KEYADMIN_OIDC_AUTHORIZATION_ENDPOINT": "https://idp.example.com/auth",
    "KEYADMIN_OIDC_TOKEN_ENDPOINT": "https://idp.example.com/token",
    "KEYADMIN_OIDC_JWKS_ENDPOINT": "https://idp.example.com/jwks",
    "KEYADMIN_OIDC_SCOPES": "openid email",
    "KEYADMIN_OIDC_TOKEN_AUTH": "client_secret_basic",
    **ROLES,
}


def test_complete_settings_pass():
    config.check(ASSERTION)
    config.check(OIDC)
    config.check({"KEYADMIN_SSO": "dev", "DEBUG": True})
    config.check({"KEYADMIN_SSO": ""})


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"KEYADMIN_SSO": "header"}, "not a sign-in mode"),
        ({"KEYADMIN_SSO": "dev", "DEBUG": False}, "needs KEYADMIN_DEBUG=true"),
        ({**ASSERTION, "KEYADMIN_SSO_JWKS_URL": ""}, "KEYADMIN_SSO_JWKS_URL is required"),
        ({**ASSERTION, "KEYADMIN_SSO_JWKS_URL": "http://idp.example/certs"}, "must be an https"),
        ({**ASSERTION, "KEYADMIN_SSO_AUDIENCE": []}, "KEYADMIN_SSO_AUDIENCE is required"),
        ({**ASSERTION, "KEYADMIN_SSO_ISSUER": ""}, "KEYADMIN_SSO_ISSUER is required"),
        ({**ASSERTION, "KEYADMIN_SSO_ALGORITHMS": ["HS256"]}, "may list only"),
        ({**ASSERTION, "KEYADMIN_SSO_ALGORITHMS": ["none"]}, "may list only"),
        ({**ASSERTION, "KEYADMIN_SSO_ASSERTION_HEADER": ""}, "ASSERTION_HEADER"),
        ({**ASSERTION, "KEYADMIN_SSO_MAX_ASSERTION_SECONDS": 0}, "MAX_ASSERTION_SECONDS"),
        ({**ASSERTION, "KEYADMIN_SSO_ASSERTION_TYP": "JWT; x"}, "KEYADMIN_SSO_ASSERTION_TYP"),
        ({**ASSERTION, "KEYADMIN_SSO_ALLOWED_GROUPS": []}, "ALLOWED_GROUPS is required"),
        ({**ASSERTION, "KEYADMIN_ROLE_GROUPS_VIEWER": []}, "without roles"),
        ({**OIDC, "KEYADMIN_OIDC_CLIENT_SECRET": ""}, "CLIENT_SECRET is required"),
        ({**OIDC, "KEYADMIN_OIDC_JWKS_ENDPOINT": ""}, "JWKS_ENDPOINT is required"),
        ({**OIDC, "KEYADMIN_OIDC_SCOPES": "email"}, "must include openid"),
        ({**OIDC, "KEYADMIN_OIDC_TOKEN_AUTH": "none"}, "client_secret_basic or"),
        ({**OIDC, "KEYADMIN_SSO_SIGNOUT_URL": "javascript:alert(1)"}, "SIGNOUT_URL"),
        ({"KEYADMIN_APPSERVICES_BRIDGE": True, "APPSERVICES_APP_ID": "a"}, "PRIVATE_KEY"),
        (
            {
                "KEYADMIN_APPSERVICES_BRIDGE": True,
                "KEYADMIN_BRIDGE_PRIVATE_KEY": "-----BEGIN PRIVATE KEY-----\nnope\n",
                "KEYADMIN_BRIDGE_TOKEN_SECONDS": 120,
            },
            "not a readable",
        ),
        ({"KEYADMIN_AUDIT_RETENTION_DAYS": 0}, "RETENTION_DAYS"),
    ],
)
def test_incomplete_or_unsafe_settings_stop_start_up(values, message):
    with pytest.raises(ImproperlyConfigured, match=message):
        config.check(values)


def test_a_signout_path_on_our_own_host_is_fine():
    config.check({**ASSERTION, "KEYADMIN_SSO_SIGNOUT_URL": "/cdn-cgi/access/logout"})


def test_the_bridge_wants_a_strong_rsa_key(keys_for_bridge):
    weak, ec_pem = keys_for_bridge
    base = {
        "KEYADMIN_APPSERVICES_BRIDGE": True,
        "APPSERVICES_APP_ID": "a",
        "KEYADMIN_BRIDGE_TOKEN_SECONDS": 120,
    }

    with pytest.raises(ImproperlyConfigured, match="2048 or more"):
        config.check({**base, "KEYADMIN_BRIDGE_PRIVATE_KEY": weak})
    with pytest.raises(ImproperlyConfigured, match="use an RSA key"):
        config.check({**base, "KEYADMIN_BRIDGE_PRIVATE_KEY": ec_pem})


@pytest.fixture(scope="module")
def keys_for_bridge():
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    def pem(key) -> str:
        return key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()

    weak = rsa.generate_private_key(65537, 1024)  # noqa: S505 - weak on purpose
    return pem(weak), pem(ec.generate_private_key(ec.SECP256R1()))


def test_the_real_settings_module_refuses_to_start():
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "keyadmin.settings",
        "KEYADMIN_SSO": "assertion",
        "KEYADMIN_SSO_ASSERTION_HEADER": "Cf-Access-Jwt-Assertion",
    }
    env.pop("KEYADMIN_DEBUG", None)

    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "KEYADMIN_SSO_JWKS_URL is required" in result.stderr
