"""Start-up checks of the staff identity settings: a mode that cannot fail closed never starts.

`check(values)` is called at the end of settings.py's "Staff identity" section with the settings
read so far; every problem becomes one `ImproperlyConfigured` naming the variable to fix.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

from keyadmin.origins import is_loopback
from keyadmin.sso.bridge_key import BridgeKeyError, load_private_key, load_public_key
from keyadmin.sso.jwks import ASYMMETRIC_ALGORITHMS

MODES = ("", "dev", "remote-user", "assertion", "oidc")
SSO_MODES = ("remote-user", "assertion", "oidc")
_HEADER_NAME = re.compile(r"^[A-Za-z0-9-]{1,64}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
MAX_BRIDGE_TOKEN_SECONDS = 300
MIN_ASSERTION_SECONDS = 60
_TYP = re.compile(r"^[A-Za-z0-9.+/-]{1,64}$")
_GROUP_SETTINGS = (
    "KEYADMIN_SSO_ALLOWED_GROUPS",
    "KEYADMIN_ROLE_GROUPS_VIEWER",
    "KEYADMIN_ROLE_GROUPS_OPERATOR",
    "KEYADMIN_ROLE_GROUPS_AUDITOR",
)  # App Services only needs the token once, at sign-in


def _url(values: Mapping[str, Any], name: str, problems: list[str], *, required: bool) -> None:
    value = values.get(name) or ""
    if not value:
        if required:
            problems.append(f"{name} is required")
        return
    parts = urlsplit(value)
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and is_loopback(parts.hostname):
        return  # a provider on this machine (tests, a local proxy)
    problems.append(f"{name} must be an https URL (plain http only to loopback), not {value!r}")


def _required(values: Mapping[str, Any], names: tuple[str, ...], problems: list[str]) -> None:
    problems.extend(f"{name} is required" for name in names if not values.get(name))


def _environ_var(values: Mapping[str, Any], name: str, problems: list[str]) -> None:
    value = values.get(name) or ""
    if not _ENV_NAME.match(value):
        problems.append(f"{name} must be a WSGI environ variable name, not {value!r}")
    elif value.upper().startswith("HTTP_"):
        # HTTP_* keys are request headers: anyone who reaches keyadmin can send them.
        problems.append(f"{name}={value!r} names a request header; name a server variable")


def _separator(values: Mapping[str, Any], problems: list[str]) -> None:
    separator = values.get("KEYADMIN_SSO_REMOTE_GROUPS_SEPARATOR") or ""
    if not separator or separator != separator.strip() or not separator.isprintable():
        problems.append(
            "KEYADMIN_SSO_REMOTE_GROUPS_SEPARATOR must be the exact printable text the front "
            f"server puts between group names (OIDCClaimDelimiter), not {separator!r}"
        )
        return
    for name in _GROUP_SETTINGS:
        clashing = [group for group in values.get(name) or [] if separator in group]
        if clashing:
            problems.append(
                f"{name} names {clashing}, which contain the group separator {separator!r}: "
                "such a group cannot be told apart from two groups"
            )


def _algorithms(values: Mapping[str, Any], problems: list[str]) -> None:
    algorithms = values.get("KEYADMIN_SSO_ALGORITHMS") or []
    if not algorithms:
        problems.append("KEYADMIN_SSO_ALGORITHMS is empty")
    bad = [alg for alg in algorithms if alg not in ASYMMETRIC_ALGORITHMS]
    if bad:
        problems.append(
            f"KEYADMIN_SSO_ALGORITHMS may list only {sorted(ASYMMETRIC_ALGORITHMS)}, not {bad}"
        )


def _bridge(values: Mapping[str, Any], problems: list[str]) -> None:
    pem = values.get("KEYADMIN_BRIDGE_PRIVATE_KEY")
    if not pem:
        problems.append(
            "KEYADMIN_APPSERVICES_BRIDGE=true needs KEYADMIN_BRIDGE_PRIVATE_KEY "
            "(or KEYADMIN_BRIDGE_PRIVATE_KEY_FILE): an RSA private key in PEM, 2048 bits or more"
        )
    else:
        try:
            load_private_key(pem)
        except BridgeKeyError as exc:
            problems.append(f"KEYADMIN_BRIDGE_PRIVATE_KEY: {exc}")
    previous = values.get("KEYADMIN_BRIDGE_PREVIOUS_PUBLIC_KEY")
    if previous:
        try:
            load_public_key(previous)
        except BridgeKeyError as exc:
            problems.append(f"KEYADMIN_BRIDGE_PREVIOUS_PUBLIC_KEY: {exc}")
    if not (values.get("KEYADMIN_BRIDGE_AUDIENCE") or values.get("APPSERVICES_APP_ID")):
        problems.append("the bridge needs KEYADMIN_BRIDGE_AUDIENCE or APPSERVICES_APP_ID")
    seconds = values.get("KEYADMIN_BRIDGE_TOKEN_SECONDS", 0)
    if not 1 <= seconds <= MAX_BRIDGE_TOKEN_SECONDS:
        problems.append(
            f"KEYADMIN_BRIDGE_TOKEN_SECONDS must be 1 to {MAX_BRIDGE_TOKEN_SECONDS}, not {seconds}"
        )


def _act_for(values: Mapping[str, Any], problems: list[str]) -> None:
    """Apps that act for customers with RS256 sign with the bridge's key: it must be usable."""
    signing = [
        app.key
        for app in values.get("KEYADMIN_APPS") or ()
        if app.act_for_enabled and app.jwt_algorithm == "RS256"
    ]
    if not signing:
        return
    pem = values.get("KEYADMIN_BRIDGE_PRIVATE_KEY")
    try:
        if not pem:
            raise BridgeKeyError(
                "it is not set (an RSA private key in PEM, 2048 bits or more; or use HS256)"
            )
        load_private_key(pem)
    except BridgeKeyError as exc:
        problems.append(
            f"app(s) {', '.join(signing)} act for customers with RS256, so "
            f"KEYADMIN_BRIDGE_PRIVATE_KEY (or _FILE) signs their tokens: {exc}"
        )


def check(values: Mapping[str, Any]) -> None:
    mode = values.get("KEYADMIN_SSO") or ""
    if mode not in MODES:
        raise ImproperlyConfigured(
            f"KEYADMIN_SSO={mode!r} is not a sign-in mode; use one of "
            "remote-user, assertion, oidc (or dev, with KEYADMIN_DEBUG=true)"
        )
    problems: list[str] = []
    if mode == "dev" and not values.get("DEBUG"):
        problems.append(
            "KEYADMIN_SSO=dev is the development sign-in: it needs KEYADMIN_DEBUG=true and must "
            "never run in production"
        )
    if mode in SSO_MODES:
        if not values.get("KEYADMIN_SSO_ALLOWED_GROUPS"):
            problems.append(
                "KEYADMIN_SSO_ALLOWED_GROUPS is required: only members of these groups become "
                "staff (comma-separated group names)"
            )
        role_groups = ("VIEWER", "OPERATOR", "AUDITOR")
        if not any(values.get(f"KEYADMIN_ROLE_GROUPS_{role}") for role in role_groups):
            problems.append(
                "set at least one of KEYADMIN_ROLE_GROUPS_VIEWER, _OPERATOR, _AUDITOR: "
                "without roles no staff member can do anything"
            )
    if mode == "remote-user":
        _required(values, ("KEYADMIN_SSO_ISSUER",), problems)
        for name in (
            "KEYADMIN_SSO_REMOTE_GROUPS_VAR",
            "KEYADMIN_SSO_REMOTE_NAME_VAR",
            "KEYADMIN_SSO_REMOTE_EMAIL_VAR",
        ):
            _environ_var(values, name, problems)
        _separator(values, problems)
    if mode == "assertion":
        header = values.get("KEYADMIN_SSO_ASSERTION_HEADER") or ""
        if not _HEADER_NAME.match(header):
            problems.append(
                "KEYADMIN_SSO_ASSERTION_HEADER must name the proxy's assertion header "
                "(Cf-Access-Jwt-Assertion, x-goog-iap-jwt-assertion, X-Pomerium-Jwt-Assertion "
                "or Authorization)"
            )
        _url(values, "KEYADMIN_SSO_JWKS_URL", problems, required=True)
        _required(values, ("KEYADMIN_SSO_ISSUER", "KEYADMIN_SSO_AUDIENCE"), problems)
        _algorithms(values, problems)
        if values.get("KEYADMIN_SSO_MAX_ASSERTION_SECONDS", 86400) < MIN_ASSERTION_SECONDS:
            problems.append(
                f"KEYADMIN_SSO_MAX_ASSERTION_SECONDS must be at least {MIN_ASSERTION_SECONDS}"
            )
        if not _TYP.match(values.get("KEYADMIN_SSO_ASSERTION_TYP") or "-"):
            problems.append(
                "KEYADMIN_SSO_ASSERTION_TYP must be a JOSE typ such as JWT (or empty: not "
                f"checked), not {values.get('KEYADMIN_SSO_ASSERTION_TYP')!r}"
            )
    if mode == "oidc":
        _required(
            values,
            ("KEYADMIN_OIDC_ISSUER", "KEYADMIN_OIDC_CLIENT_ID", "KEYADMIN_OIDC_CLIENT_SECRET"),
            problems,
        )
        for name in (
            "KEYADMIN_OIDC_AUTHORIZATION_ENDPOINT",
            "KEYADMIN_OIDC_TOKEN_ENDPOINT",
            "KEYADMIN_OIDC_JWKS_ENDPOINT",
        ):
            _url(values, name, problems, required=True)
        for name in ("KEYADMIN_OIDC_USERINFO_ENDPOINT", "KEYADMIN_OIDC_END_SESSION_ENDPOINT"):
            _url(values, name, problems, required=False)
        if values.get("KEYADMIN_OIDC_TOKEN_AUTH") not in (
            "client_secret_basic",
            "client_secret_post",
        ):
            problems.append(
                "KEYADMIN_OIDC_TOKEN_AUTH must be client_secret_basic or client_secret_post"
            )
        if "openid" not in (values.get("KEYADMIN_OIDC_SCOPES") or "").split():
            problems.append("KEYADMIN_OIDC_SCOPES must include openid")
        _algorithms(values, problems)
    signout = values.get("KEYADMIN_SSO_SIGNOUT_URL") or ""
    # A path on keyadmin's own host is fine (/oauth2/sign_out, /cdn-cgi/access/logout).
    if not (signout.startswith("/") and not signout.startswith("//")):
        _url(values, "KEYADMIN_SSO_SIGNOUT_URL", problems, required=False)
    if values.get("KEYADMIN_APPSERVICES_BRIDGE"):
        _bridge(values, problems)
    _act_for(values, problems)
    if values.get("KEYADMIN_AUDIT_RETENTION_DAYS", 1) < 1:
        problems.append("KEYADMIN_AUDIT_RETENTION_DAYS must be at least 1")
    if problems:
        raise ImproperlyConfigured(
            f"staff identity (KEYADMIN_SSO={mode or 'none'}): " + "; ".join(problems)
        )
