"""The bridge's RSA signing key and its public JWK (no Django imports: settings.py checks it)."""

from __future__ import annotations

import base64
import hashlib
import json
from functools import lru_cache

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

MIN_KEY_BITS = 2048


class BridgeKeyError(Exception):
    pass


@lru_cache(maxsize=4)
def load_private_key(pem: str) -> rsa.RSAPrivateKey:
    try:
        key = serialization.load_pem_private_key(pem.encode(), password=None)
    except (ValueError, TypeError):
        raise BridgeKeyError("not a readable, unencrypted PEM private key") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise BridgeKeyError("App Services verifies JWK URI tokens with RS256: use an RSA key")
    if key.key_size < MIN_KEY_BITS:
        raise BridgeKeyError(f"the RSA key has {key.key_size} bits; use {MIN_KEY_BITS} or more")
    return key


def load_public_key(pem: str) -> rsa.RSAPublicKey:
    try:
        key = serialization.load_pem_public_key(pem.encode())
    except (ValueError, TypeError):
        raise BridgeKeyError("not a readable PEM public key") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise BridgeKeyError("not an RSA public key")
    return key


def public_jwk(public_key: rsa.RSAPublicKey, kid: str | None = None) -> dict:
    jwk = json.loads(RSAAlgorithm.to_jwk(public_key))
    members = {name: jwk[name] for name in ("e", "kty", "n")}
    if kid is None:
        # RFC 7638 thumbprint: a key id that changes exactly when the key does.
        canonical = json.dumps(members, separators=(",", ":"), sort_keys=True).encode()
        kid = base64.urlsafe_b64encode(hashlib.sha256(canonical).digest()).rstrip(b"=").decode()
    return {**members, "kid": kid, "use": "sig", "alg": "RS256"}
