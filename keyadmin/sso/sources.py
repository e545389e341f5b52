"""Where a verified identity comes from, one source per mode; every source fails closed.

A source answers `identify(request)` with a `StaffIdentity`, `None` (no identity reached keyadmin),
or raises `IdentityRejected` (something claimed an identity and failed verification). Nothing
here falls back to another source, and no plain request header is ever an identity.
"""

from __future__ import annotations

import threading
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest

from keyadmin.sso import jwks

LEEWAY_SECONDS = 30  # clock skew between the proxy and keyadmin
MAX_TOKEN_LENGTH = 16 * 1024
MAX_SUBJECT_LENGTH = 255
MAX_GROUPS = 200
MAX_GROUP_LENGTH = 255


@dataclass(frozen=True)
class StaffIdentity:
    issuer: str
    subject: str
    name: str = ""
    email: str = ""
    groups: tuple[str, ...] = field(default_factory=tuple)


class IdentityRejected(Exception):
    """A claimed identity failed verification; `reason` is short and holds no token."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


def _printable(value: Any, limit: int) -> str:
    if not isinstance(value, str):
        return ""
    return "".join(ch for ch in value if unicodedata.category(ch)[0] != "C")[:limit]


def _subject(value: Any) -> str:
    if (
        not isinstance(value, str)
        or not value
        or len(value) > MAX_SUBJECT_LENGTH
        or _printable(value, MAX_SUBJECT_LENGTH) != value
    ):
        raise IdentityRejected("the subject is missing or malformed")
    return value


def exact_group(value: Any) -> str | None:
    """`value` as a group name only if it is one exactly: never edited into another name.

    A name with a control or format character (zero-width space, word joiner, bidi marks),
    leading or trailing whitespace, or nothing in it is refused whole: stripping it could turn
    `keyadmin-\u200boperators` or ` keyadmin-operators` into a privileged group.
    """
    if not isinstance(value, str) or not value or len(value) > MAX_GROUP_LENGTH:
        return None
    if value != value.strip():
        return None
    if any(unicodedata.category(ch)[0] == "C" for ch in value):
        return None
    return value


def _exact_groups(items: list[Any]) -> tuple[str, ...]:
    groups = {exact_group(item) for item in items[:MAX_GROUPS]}
    return tuple(sorted(group for group in groups if group is not None))


def claim_groups(value: Any) -> tuple[str, ...]:
    """Groups from a JWT claim (assertion, oidc): a JSON array of names, never split.

    A single string is one group name, commas and all: splitting it would let one IdP group
    called `EMEA, keyadmin-operators` grant the operator role.
    """
    if isinstance(value, str):
        return _exact_groups([value])
    if isinstance(value, list | tuple):
        return _exact_groups(list(value))
    return ()


def split_groups(value: Any, separator: str) -> tuple[str, ...]:
    """Groups from a server variable (remote-user): names joined by `separator`, split on it.

    Nothing is stripped: with a `, ` join every name after the first would start with a space
    and be refused, so the separator must be exactly what the front server puts between names.
    A group whose name contains the separator cannot be expressed this way.
    """
    if not isinstance(value, str) or not value:
        return ()
    return _exact_groups(value.split(separator))


def claim(claims: dict[str, Any], path: str) -> Any:
    """A claim by dotted path (`groups`, `custom.groups`)."""
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def identity_from_claims(claims: dict[str, Any], issuer: str) -> StaffIdentity:
    email = _printable(claims.get("email"), 254)
    name = _printable(claims.get("name") or claims.get("preferred_username") or email, 200)
    return StaffIdentity(
        issuer=issuer,
        subject=_subject(claims.get("sub")),
        name=name,
        email=email,
        groups=claim_groups(claim(claims, settings.KEYADMIN_SSO_GROUPS_CLAIM)),
    )


class RemoteUserSource:
    """REMOTE_USER from the WSGI environ, put there by the front server after its own login.

    Only environ keys without the HTTP_ prefix are read: under WSGI those can come only from the
    server, never from a client header (`Remote-User: x` arrives as HTTP_REMOTE_USER).
    """

    mode = "remote-user"

    def __init__(
        self, issuer: str, groups_var: str, name_var: str, email_var: str, separator: str
    ) -> None:
        self.issuer = issuer
        self._groups_var = groups_var
        self._separator = separator
        self._name_var = name_var
        self._email_var = email_var

    def identify(self, request: HttpRequest) -> StaffIdentity | None:
        if isinstance(request, ASGIRequest):
            # ASGI has no server environ: whatever looks like REMOTE_USER came from a header.
            raise IdentityRejected("remote-user mode runs only under WSGI")
        subject = request.META.get("REMOTE_USER")
        if not subject:
            return None
        return StaffIdentity(
            issuer=self.issuer,
            subject=_subject(subject),
            name=_printable(request.META.get(self._name_var), 200),
            email=_printable(request.META.get(self._email_var), 254),
            groups=split_groups(request.META.get(self._groups_var, ""), self._separator),
        )


class AssertionSource:
    """A JWT an identity-aware proxy adds to every request, verified on every request."""

    mode = "assertion"

    def __init__(
        self,
        header: str,
        jwks_url: str,
        issuer: str,
        audience: list[str],
        algorithms: list[str],
        max_lifetime: int,
        typ: str,
    ) -> None:
        self.issuer = issuer
        self._bearer = header.lower() == "authorization"  # oauth2-proxy: `Bearer <id token>`
        self._meta_key = "HTTP_" + header.upper().replace("-", "_")
        self._jwks_url = jwks_url
        self._audience = audience
        self._algorithms = [alg for alg in algorithms if alg in jwks.ASYMMETRIC_ALGORITHMS]
        self._max_lifetime = max_lifetime
        self._typ = typ

    def identify(self, request: HttpRequest) -> StaffIdentity | None:
        raw = request.META.get(self._meta_key)
        if not raw:
            return None
        token = raw.strip()
        if self._bearer:
            scheme, _, token = token.partition(" ")
            if scheme.lower() != "bearer":
                raise IdentityRejected("the Authorization header is not a Bearer token")
            token = token.strip()
        return identity_from_claims(self.verify(token), self.issuer)

    def verify(self, token: str) -> dict[str, Any]:
        if len(token) > MAX_TOKEN_LENGTH:
            raise IdentityRejected("the assertion is too long")
        try:
            return jwks.verify(
                token,
                jwks_url=self._jwks_url,
                algorithms=self._algorithms,
                audience=self._audience,
                issuer=self.issuer,
                leeway=LEEWAY_SECONDS,
                max_lifetime=self._max_lifetime,
                typ=self._typ,
            )
        except jwks.TokenRejected as exc:
            raise IdentityRejected(f"the assertion was refused: {exc}") from None


PerRequestSource = RemoteUserSource | AssertionSource

_built: dict[tuple, PerRequestSource] = {}
_built_lock = threading.Lock()


def per_request_source() -> PerRequestSource | None:
    """The source that identifies every request (remote-user, assertion), or None."""
    mode = settings.KEYADMIN_SSO
    if mode == "remote-user":
        args: tuple = (
            settings.KEYADMIN_SSO_ISSUER,
            settings.KEYADMIN_SSO_REMOTE_GROUPS_VAR,
            settings.KEYADMIN_SSO_REMOTE_NAME_VAR,
            settings.KEYADMIN_SSO_REMOTE_EMAIL_VAR,
            settings.KEYADMIN_SSO_REMOTE_GROUPS_SEPARATOR,
        )
        factory: type = RemoteUserSource
    elif mode == "assertion":
        args = (
            settings.KEYADMIN_SSO_ASSERTION_HEADER,
            settings.KEYADMIN_SSO_JWKS_URL,
            settings.KEYADMIN_SSO_ISSUER,
            list(settings.KEYADMIN_SSO_AUDIENCE),
            list(settings.KEYADMIN_SSO_ALGORITHMS),
            settings.KEYADMIN_SSO_MAX_ASSERTION_SECONDS,
            settings.KEYADMIN_SSO_ASSERTION_TYP,
        )
        factory = AssertionSource
    else:
        return None
    key = (mode, repr(args))
    with _built_lock:
        if key not in _built:
            _built[key] = factory(*args)
        return _built[key]
