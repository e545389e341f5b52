"""App Services without a second password: the SSO identity, carried by a custom-token JWT.

With KEYADMIN_APPSERVICES_BRIDGE on, a staff sign-in also mints a short-lived RS256 JWT
(`sub` = the staff member's SSO subject, `aud` = the App ID, `exp` at most five minutes away, a
`kid`) and logs in to App Services' `custom-token` provider with it. App Services checks the
signature against keyadmin's public JWKS (`/.well-known/keyadmin-jwks.json`), so the private key
never leaves keyadmin; whoever holds it can sign in as any user of that provider, so keep it in
a secret store and rotate it through KEYADMIN_BRIDGE_PREVIOUS_PUBLIC_KEY.

The token also carries the staff member's `name` and `email` when known, so an app that maps them
as metadata fields shows who the App Services user is. A refused login leaves the staff member
signed in to keyadmin; why it failed waits in the session for the App Services sign-in page.
"""

from __future__ import annotations

import logging
import time
import uuid

import jwt
from django.conf import settings
from django.http import HttpRequest
from django.views.decorators.debug import sensitive_variables

from keyadmin import appservices, audit
from keyadmin.appservices.connection import connect
from keyadmin.sso.bridge_key import load_private_key, load_public_key, public_jwk

logger = logging.getLogger(__name__)

ISSUER = "keyadmin"
MAX_TOKEN_SECONDS = 300
FAILURE_KEY = "appservices_bridge_failure"


def enabled() -> bool:
    return bool(settings.KEYADMIN_APPSERVICES_BRIDGE)


def _current_jwk() -> dict:
    key = load_private_key(settings.KEYADMIN_BRIDGE_PRIVATE_KEY)
    return public_jwk(key.public_key(), settings.KEYADMIN_BRIDGE_KEY_ID or None)


def public_jwks() -> dict:
    """The JWKS App Services fetches: the signing key, plus the previous one during a rotation."""
    keys = [_current_jwk()]
    previous = settings.KEYADMIN_BRIDGE_PREVIOUS_PUBLIC_KEY
    if previous:
        keys.append(public_jwk(load_public_key(previous)))
    return {"keys": keys}


@sensitive_variables("token", "key")
def mint(subject: str, *, name: str | None = None, email: str | None = None) -> str:
    now = int(time.time())
    key = load_private_key(settings.KEYADMIN_BRIDGE_PRIVATE_KEY)
    claims = {
        "iss": ISSUER,
        "sub": subject,
        "aud": settings.KEYADMIN_BRIDGE_AUDIENCE or settings.APPSERVICES_APP_ID,
        "iat": now,
        "exp": now + min(settings.KEYADMIN_BRIDGE_TOKEN_SECONDS, MAX_TOKEN_SECONDS),
        "jti": uuid.uuid4().hex,
    }
    claims.update({claim: value for claim, value in (("name", name), ("email", email)) if value})
    token = jwt.encode(
        claims, key, algorithm="RS256", headers={"kid": _current_jwk()["kid"], "typ": "JWT"}
    )
    return token


@sensitive_variables("token")
def sign_in(
    request: HttpRequest,
    subject: str,
    *,
    name: str | None = None,
    email: str | None = None,
    keep_session_key: bool = False,
) -> bool:
    """Connect the new staff session to App Services as `subject`; False (audited) on failure.

    On failure the error's message is kept in the session for `take_failure`. For
    `keep_session_key`, see `keyadmin.appservices.connection.connect`.
    """
    request.session.pop(FAILURE_KEY, None)
    try:
        token = mint(subject, name=name, email=email)
        connect(request, "custom-token", {"token": token}, keep_session_key=keep_session_key)
    except appservices.AppServicesError as error:
        logger.warning("App Services bridge sign-in failed (%s)", type(error).__name__)
        audit.record_error(request, "appservices-signin", error)
        request.session[FAILURE_KEY] = error.message
        return False
    audit.record(request, "appservices-signin", audit.OK, detail="custom-token bridge")
    return True


def take_failure(request: HttpRequest) -> appservices.AppServicesError | None:
    """Why the bridge could not connect this staff session, once (then it is forgotten)."""
    message = request.session.pop(FAILURE_KEY, None)
    return appservices.AppServicesError(message) if isinstance(message, str) else None
