"""The custom-token (JWT) login provider: verify a third-party JWT, name its subject, and copy
the configured metadata fields into the user's profile.

Like App Services' "Custom JWT" provider, it takes an HS256 signing secret or a JWKS URL (for
RS256/ES256 keys picked by `kid`), and checks `exp` and `aud`. The JWKS is fetched with urllib
through PyJWT's PyJWKClient and cached. Metadata fields map a claim (a dotted path such as
`name.first`) to a profile field; the profile holds only those fields, never `sub`, `aud`, `exp`
or other claims.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jwt

from keyadmin.emulator.config import MetadataField

ASYMMETRIC = ("RS256", "RS384", "RS512", "ES256", "ES384", "PS256")


class CustomTokenRejected(Exception):
    """Why a token was refused, for the server's own log (the client only sees "unauthorized")."""


@dataclass(frozen=True)
class CustomTokenUser:
    subject: str
    profile_data: dict[str, Any]


class CustomTokenVerifier:
    def __init__(
        self,
        secret: str | None,
        jwks_url: str | None,
        audience: str,
        metadata: tuple[MetadataField, ...] = (),
    ) -> None:
        self._secret = secret
        self._jwks = jwt.PyJWKClient(jwks_url, cache_keys=True, timeout=5) if jwks_url else None
        self._audience = audience
        self._metadata = metadata

    @property
    def configured(self) -> bool:
        return bool(self._secret or self._jwks)

    def verify(self, token: str) -> CustomTokenUser:
        """The verified token's `sub` and profile fields, or CustomTokenRejected saying why."""
        try:
            algorithm = jwt.get_unverified_header(token).get("alg")
            key = self._key_for(token, algorithm)
            claims = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                audience=self._audience,
                options={"require": ["exp", "sub", "aud"]},
            )
        except jwt.PyJWTError as exc:
            raise CustomTokenRejected(str(exc)) from None
        if not isinstance(claims["sub"], str) or not claims["sub"]:
            raise CustomTokenRejected("'sub' must be a non-empty string")
        return CustomTokenUser(claims["sub"], profile_data(claims, self._metadata))

    def _key_for(self, token: str, algorithm: object) -> object:
        if algorithm == "HS256" and self._secret:
            return self._secret
        if algorithm in ASYMMETRIC and self._jwks:
            return self._jwks.get_signing_key_from_jwt(token).key
        raise jwt.InvalidAlgorithmError(f"algorithm {algorithm!r} is not accepted here")


_MISSING = object()


def profile_data(claims: dict[str, Any], fields: tuple[MetadataField, ...]) -> dict[str, Any]:
    """The profile `data` of a login: each configured field whose claim the token carries."""
    data: dict[str, Any] = {}
    for field in fields:
        value = _claim(claims, field.claim)
        if value is _MISSING or value is None:
            if field.required:
                raise CustomTokenRejected(f"required metadata claim {field.claim!r} is missing")
            continue
        data[field.field_name] = value
    return data


def _claim(claims: dict[str, Any], path: str) -> Any:
    value: Any = claims
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return _MISSING
        value = value[part]
    return value
