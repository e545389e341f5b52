"""keyadmin's own OpenID Connect login (KEYADMIN_SSO=oidc), on mozilla-django-oidc.

mozilla-django-oidc's defaults are not ours: it signs with HS256, has PKCE off,
checks neither `iss` nor `aud` of the ID token and matches users by email. Here:

- its settings come from `oidc_setting`, which maps KEYADMIN_OIDC_* and pins the rest (RS256/ES256
  only, PKCE S256, nonce, no unsecured JWTs), whatever OIDC_* names settings.py may hold;
- the ID token is verified against the provider's JWKS (cached by `kid`) with the issuer,
  audience (our client id), `azp`, `exp`, `iat` and the nonce checked;
- users are matched by (issuer, subject) through `Staff`, created only for allowed groups;
- sign-out goes to the provider's end_session endpoint (RP-initiated logout).
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import SuspiciousOperation
from django.http import HttpRequest
from django.urls import reverse
from mozilla_django_oidc.auth import OIDCAuthenticationBackend

from keyadmin.sso import http, jwks
from keyadmin.sso.sources import LEEWAY_SECONDS, IdentityRejected, identity_from_claims
from keyadmin.sso.staff import may_be_staff, provision

logger = logging.getLogger(__name__)

_MAPPED = {
    "OIDC_OP_AUTHORIZATION_ENDPOINT": "KEYADMIN_OIDC_AUTHORIZATION_ENDPOINT",
    "OIDC_OP_TOKEN_ENDPOINT": "KEYADMIN_OIDC_TOKEN_ENDPOINT",
    "OIDC_OP_USER_ENDPOINT": "KEYADMIN_OIDC_USERINFO_ENDPOINT",
    "OIDC_OP_JWKS_ENDPOINT": "KEYADMIN_OIDC_JWKS_ENDPOINT",
    "OIDC_RP_CLIENT_ID": "KEYADMIN_OIDC_CLIENT_ID",
    "OIDC_RP_CLIENT_SECRET": "KEYADMIN_OIDC_CLIENT_SECRET",
    "OIDC_RP_SCOPES": "KEYADMIN_OIDC_SCOPES",
}
_PINNED: dict[str, Any] = {
    "OIDC_RP_SIGN_ALGO": "RS256",  # only read by the parent's __init__; verify_token decides
    "OIDC_RP_IDP_SIGN_KEY": None,
    "OIDC_USE_PKCE": True,
    "OIDC_PKCE_CODE_CHALLENGE_METHOD": "S256",
    "OIDC_USE_NONCE": True,
    "OIDC_ALLOW_UNSECURED_JWT": False,
    "OIDC_VERIFY_SSL": True,
    "OIDC_STORE_ACCESS_TOKEN": False,
    "OIDC_STORE_ID_TOKEN": False,
    "OIDC_CREATE_USER": True,  # gated by the allowed groups in verify_claims
    "OIDC_TIMEOUT": http.TIMEOUT,
    "OIDC_PROXY": None,
    "OIDC_AUTHENTICATION_CALLBACK_URL": "sso:oidc-callback",
    "OIDC_OP_LOGOUT_URL_METHOD": "keyadmin.sso.oidc.logout_url",
    "OIDC_REDIRECT_FIELD_NAME": "next",
    "LOGIN_REDIRECT_URL": "/",
    "LOGIN_REDIRECT_URL_FAILURE": "/",
}


def oidc_setting(name: str, *default: Any) -> Any:
    if name in _PINNED:
        return _PINNED[name]
    if name in _MAPPED:
        return getattr(settings, _MAPPED[name])
    if name == "OIDC_TOKEN_USE_BASIC_AUTH":
        return settings.KEYADMIN_OIDC_TOKEN_AUTH == "client_secret_basic"  # noqa: S105
    return getattr(settings, name, *default)


def enabled() -> bool:
    return settings.KEYADMIN_SSO == "oidc"


def logout_url(request: HttpRequest) -> str | None:
    """RP-initiated logout: the provider's end_session URL, back to our signed-out page."""
    endpoint = settings.KEYADMIN_OIDC_END_SESSION_ENDPOINT
    if not endpoint:
        return settings.KEYADMIN_SSO_SIGNOUT_URL or None
    params = {
        "client_id": settings.KEYADMIN_OIDC_CLIENT_ID,
        "post_logout_redirect_uri": request.build_absolute_uri(reverse("sso:signed-out")),
    }
    return f"{endpoint}{'&' if '?' in endpoint else '?'}{urlencode(params)}"


class StaffOIDCBackend(OIDCAuthenticationBackend):
    get_settings = staticmethod(oidc_setting)

    def __init__(self, *args, **kwargs) -> None:
        # Django instantiates every backend on each authenticate(); outside oidc mode there are
        # no endpoints to read, and this backend answers nobody.
        self.UserModel = get_user_model()
        self.enabled = enabled()
        if self.enabled:
            super().__init__(*args, **kwargs)

    def authenticate(self, request, **kwargs):
        if not self.enabled or request is None:
            return None
        return super().authenticate(request, **kwargs)

    def get_user(self, user_id):
        user = self.UserModel.objects.select_related("staff").filter(pk=user_id).first()
        return user if user is not None and user.is_active else None

    # --- the ID token ---

    def verify_token(self, token: str, **kwargs) -> dict[str, Any]:
        if not isinstance(token, str) or not token:
            raise SuspiciousOperation("the provider sent no ID token")
        try:
            claims = jwks.verify(
                token,
                jwks_url=settings.KEYADMIN_OIDC_JWKS_ENDPOINT,
                algorithms=settings.KEYADMIN_SSO_ALGORITHMS,
                audience=settings.KEYADMIN_OIDC_CLIENT_ID,
                issuer=settings.KEYADMIN_OIDC_ISSUER,
                leeway=LEEWAY_SECONDS,
            )
        except jwks.TokenRejected as exc:
            raise SuspiciousOperation(f"ID token rejected: {exc}") from None
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if len(audiences) > 1 and claims.get("azp") != settings.KEYADMIN_OIDC_CLIENT_ID:
            raise SuspiciousOperation("ID token for several audiences without our azp")
        if "nonce" in kwargs:
            # The nonce this browser's login started with, one-time (popped from the session).
            expected = kwargs["nonce"]
            if not expected or claims.get("nonce") != expected:
                raise SuspiciousOperation("ID token nonce mismatch")
        return claims

    # --- calls to the provider: no redirects, no proxy variables, bounded answers ---

    def get_token(self, payload: dict[str, Any]) -> dict[str, Any]:
        auth_ = None
        if oidc_setting("OIDC_TOKEN_USE_BASIC_AUTH"):
            auth_ = (payload.pop("client_id"), payload.pop("client_secret"))
        try:
            response = http.request(
                "POST", settings.KEYADMIN_OIDC_TOKEN_ENDPOINT, data=payload, auth=auth_
            )
        except http.FetchError as exc:
            raise SuspiciousOperation(f"token endpoint: {exc}") from None
        if response.status_code != 200:
            # The body may describe the error; it never holds a token when the status is not 200.
            raise SuspiciousOperation(f"token endpoint answered {response.status_code}")
        try:
            answer = response.json()
        except ValueError:
            raise SuspiciousOperation("token endpoint answered no JSON") from None
        if not isinstance(answer, dict):
            raise SuspiciousOperation("token endpoint answered no JSON object")
        return answer

    def get_userinfo(self, access_token, id_token, payload) -> dict[str, Any]:
        endpoint = settings.KEYADMIN_OIDC_USERINFO_ENDPOINT
        if not endpoint:
            return {}
        try:
            response = http.request(
                "GET", endpoint, headers={"Authorization": f"Bearer {access_token}"}
            )
            if response.status_code != 200:
                raise http.FetchError(f"userinfo answered {response.status_code}")
            userinfo = response.json()
        except (http.FetchError, ValueError) as exc:
            raise SuspiciousOperation(f"userinfo: {exc}") from None
        if not isinstance(userinfo, dict) or userinfo.get("sub") != payload.get("sub"):
            # OIDC Core 5.3.2: a userinfo answer about someone else must not be used.
            raise SuspiciousOperation("userinfo is about another subject")
        return userinfo

    # --- users: matched by (issuer, subject), never by email ---

    def get_or_create_user(self, access_token, id_token, payload):
        userinfo = self.get_userinfo(access_token, id_token, payload)
        claims = {**userinfo, **payload}  # the signed ID token wins where both speak
        if not self.verify_claims(claims):
            return None
        users = self.filter_users_by_claims(claims)
        if users:
            return self.update_user(users[0], claims)
        return self.create_user(claims)

    def _identity(self, claims: dict[str, Any]):
        try:
            return identity_from_claims(claims, settings.KEYADMIN_OIDC_ISSUER)
        except IdentityRejected as exc:
            raise SuspiciousOperation(exc.reason) from None

    def verify_claims(self, claims: dict[str, Any]) -> bool:
        identity = self._identity(claims)
        if may_be_staff(identity):
            return True
        self.request.keyadmin_refused_identity = identity
        return False

    def filter_users_by_claims(self, claims: dict[str, Any]):
        return list(
            self.UserModel.objects.filter(
                staff__issuer=settings.KEYADMIN_OIDC_ISSUER,
                staff__subject=claims.get("sub"),
                is_active=True,
            )
        )

    def create_user(self, claims: dict[str, Any]):
        return provision(self._identity(claims))

    def update_user(self, user, claims: dict[str, Any]):
        return provision(self._identity(claims))

    def describe_user_by_claims(self, claims: dict[str, Any]) -> str:
        return f"subject {claims.get('sub')!r}"
