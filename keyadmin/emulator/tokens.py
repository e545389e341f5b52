"""Session tokens: HS256 JWTs with App Services' claims.

The signing key lives in the sqlite file, so tokens stay valid across restarts of the server.
Claims follow the real tokens (sub, iat, exp, typ, the session id in `iss`/`baas_id`, the device
and domain ids, and `baas_identity` on refresh tokens), plus their legacy `stitch_*` mirrors.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import jwt

from keyadmin.emulator.store import Session


class TokenInvalid(Exception):
    """Not a token this server signed (garbage, bad signature, missing claims)."""


class SignatureInvalid(TokenInvalid):
    """A well-formed JWT whose signature is not this server's (signed with another key)."""


class TokenExpired(Exception):
    pass


class WrongTokenType(Exception):
    pass


@dataclass(frozen=True)
class Claims:
    user_id: str
    session_id: str
    typ: str


class Tokens:
    def __init__(self, key: str, domain_id: str, access_ttl: int, refresh_ttl: int) -> None:
        self._key = key
        self.domain_id = domain_id
        self.access_ttl = access_ttl
        self.refresh_ttl = refresh_ttl

    def access_token(self, session: Session) -> str:
        now = int(time.time())
        return self._sign(
            {
                "sub": session.user_id,
                "iat": now,
                "exp": now + self.access_ttl,
                "typ": "access",
                "iss": session.id,
                "baas_device_id": session.device_id,
                "baas_domain_id": self.domain_id,
                "stitch_devId": session.device_id,
                "stitch_domainId": self.domain_id,
            }
        )

    def refresh_token(self, session: Session, provider_id: str) -> str:
        identity = {
            "id": session.identity_id,
            "provider_type": session.provider_type,
            "provider_id": provider_id,
        }
        return self._sign(
            {
                "sub": session.user_id,
                "iat": int(time.time()),
                "exp": int(session.expires_at),
                "typ": "refresh",
                "baas_id": session.id,
                "baas_device_id": session.device_id,
                "baas_domain_id": self.domain_id,
                "baas_data": None,
                "baas_identity": identity,
                "stitch_id": session.id,
                "stitch_devId": session.device_id,
                "stitch_domainId": self.domain_id,
                "stitch_ident": identity,
            }
        )

    def verify(self, token: str, typ: str) -> Claims:
        """The claims of a token of type `typ` that this server signed and that has not expired.

        The type is checked before expiry, so an expired access token sent where a refresh
        token belongs reads as the wrong type, as the real service words it.
        """
        try:
            payload = jwt.decode(
                token,
                self._key,
                algorithms=["HS256"],
                options={"verify_exp": False, "require": ["sub", "exp", "iat", "typ"]},
            )
        except jwt.InvalidSignatureError:
            raise SignatureInvalid from None
        except jwt.PyJWTError:
            raise TokenInvalid from None
        if payload["typ"] != typ:
            raise WrongTokenType(payload["typ"])
        if not isinstance(payload["exp"], int | float) or payload["exp"] <= time.time():
            raise TokenExpired
        session_id = payload.get("baas_id") if typ == "refresh" else payload.get("iss")
        if not isinstance(session_id, str) or not isinstance(payload["sub"], str):
            raise TokenInvalid
        return Claims(user_id=payload["sub"], session_id=session_id, typ=typ)

    def _sign(self, claims: dict) -> str:
        return jwt.encode(claims, self._key, algorithm="HS256")
