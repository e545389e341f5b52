"""The custom-token (JWT) login provider: verify a third-party JWT and name its subject.

Like App Services' "Custom JWT" provider, it takes an HS256 signing secret or a JWKS URL (for
RS256/ES256 keys picked by `kid`), and checks `exp` and `aud`. The JWKS is fetched with urllib
through PyJWT's PyJWKClient and cached.
"""

from __future__ import annotations

import jwt

ASYMMETRIC = ("RS256", "RS384", "RS512", "ES256", "ES384", "PS256")


class CustomTokenRejected(Exception):
    pass


class CustomTokenVerifier:
    def __init__(self, secret: str | None, jwks_url: str | None, audience: str) -> None:
        self._secret = secret
        self._jwks = jwt.PyJWKClient(jwks_url, cache_keys=True, timeout=5) if jwks_url else None
        self._audience = audience

    @property
    def configured(self) -> bool:
        return bool(self._secret or self._jwks)

    def subject(self, token: str) -> str:
        """The verified token's `sub`, or CustomTokenRejected saying why (never the token)."""
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
        return claims["sub"]

    def _key_for(self, token: str, algorithm: object) -> object:
        if algorithm == "HS256" and self._secret:
            return self._secret
        if algorithm in ASYMMETRIC and self._jwks:
            return self._jwks.get_signing_key_from_jwt(token).key
        raise jwt.InvalidAlgorithmError(f"algorithm {algorithm!r} is not accepted here")
