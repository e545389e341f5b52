"""Public keys of an identity provider, fetched from its JWKS URL and cached by key id.

A token naming an unknown `kid` triggers a refetch (keys rotate), but at most once per
`MIN_REFETCH_SECONDS`, so a stream of forged tokens with random key ids cannot turn keyadmin into
a request amplifier against the provider. Keys are refreshed anyway after `MAX_AGE_SECONDS`, so a
key the provider withdrew stops being trusted.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import jwt

from keyadmin.sso import http

logger = logging.getLogger(__name__)

MIN_REFETCH_SECONDS = 60.0
MAX_AGE_SECONDS = 3600.0
# How long a token with an unknown kid waits for a fetch another request started; longer than
# one fetch's connect and read timeouts, so it only gives up on a provider that hangs.
FETCH_WAIT_SECONDS = 15.0

# The key type (and curve) each accepted algorithm needs: a token cannot pick an HMAC algorithm
# and have the provider's *public* key used as its secret.
_KEY_TYPES = {
    "RS256": ("RSA", None),
    "RS384": ("RSA", None),
    "RS512": ("RSA", None),
    "PS256": ("RSA", None),
    "PS384": ("RSA", None),
    "PS512": ("RSA", None),
    "ES256": ("EC", "P-256"),
    "ES384": ("EC", "P-384"),
    "ES512": ("EC", "P-521"),
}
ASYMMETRIC_ALGORITHMS = frozenset(_KEY_TYPES)


class KeyNotFound(Exception):
    """No usable key for this token; the message is safe to log (no token in it)."""


class JwksCache:
    def __init__(
        self,
        url: str,
        *,
        min_refetch: float = MIN_REFETCH_SECONDS,
        max_age: float = MAX_AGE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self._min_refetch = min_refetch
        self._max_age = max_age
        self._clock = clock
        self._lock = threading.Lock()
        self._keys: dict[str, dict] = {}
        self._fetched_at: float | None = None  # last successful fetch
        self._tried_at: float | None = None  # last attempt, successful or not
        self._in_flight: threading.Event | None = None  # set when the running fetch ends
        self.fetches = 0

    def key(self, kid: str, algorithm: str) -> jwt.PyJWK:
        """The verification key for `kid`, bound to `algorithm`; `KeyNotFound` otherwise.

        One fetch at a time, and never under the lock: while one request refetches, the others
        go on with the cached keys, and only a request whose `kid` is unknown waits for the
        fetch in flight (it may bring that key).
        """
        if algorithm not in _KEY_TYPES:
            raise KeyNotFound(f"algorithm {algorithm!r} is not an asymmetric one")
        with self._lock:
            now = self._clock()
            jwk = self._keys.get(kid)
            stale = self._fetched_at is None or now - self._fetched_at >= self._max_age
            in_flight = self._in_flight
            fetching = (stale or jwk is None) and in_flight is None and self._may_fetch(now)
            if fetching:
                self._tried_at = now
                self.fetches += 1
                in_flight = self._in_flight = threading.Event()
        if fetching:
            self._fetch_and_publish(now, in_flight)
            jwk = self._keys.get(kid)
        elif jwk is None and in_flight is not None:
            in_flight.wait(FETCH_WAIT_SECONDS)
            jwk = self._keys.get(kid)
        if jwk is None:
            raise KeyNotFound("the token's key id is not in the provider's JWKS")
        return _bind(jwk, algorithm)

    def _may_fetch(self, now: float) -> bool:
        return self._tried_at is None or now - self._tried_at >= self._min_refetch

    def _fetch_and_publish(self, now: float, done: threading.Event) -> None:
        keys = None
        try:
            keys = self._download()
        finally:
            with self._lock:
                if keys is not None:
                    self._keys = keys
                    self._fetched_at = now
                self._in_flight = None
            done.set()

    def _download(self) -> dict[str, dict] | None:
        """The provider's signing keys by `kid`, or None when the fetch failed."""
        try:
            response = http.request("GET", self.url, headers={"Accept": "application/json"})
            if response.status_code != 200:
                raise http.FetchError(f"{self.url} answered {response.status_code}")
            document = response.json()
            keys = document["keys"]
            if not isinstance(keys, list):
                raise ValueError("'keys' is not a list")
        except (http.FetchError, ValueError, KeyError, TypeError) as exc:
            # Keep the keys we had: a provider hiccup must not sign everyone out at once.
            logger.warning("JWKS fetch failed (%s); keeping %d cached keys", exc, len(self._keys))
            return None
        return {
            item["kid"]: item
            for item in keys
            if isinstance(item, dict)
            and isinstance(item.get("kid"), str)
            and item.get("use", "sig") == "sig"
            and item.get("kty") in ("RSA", "EC")
        }


def _bind(jwk: dict, algorithm: str) -> jwt.PyJWK:
    kty, curve = _KEY_TYPES[algorithm]
    if jwk.get("kty") != kty or (curve and jwk.get("crv") != curve):
        raise KeyNotFound(f"key {jwk.get('kid')!r} is not a {algorithm} key")
    if jwk.get("alg", algorithm) != algorithm:
        raise KeyNotFound(f"key {jwk.get('kid')!r} is for {jwk.get('alg')!r}, not {algorithm}")
    try:
        return jwt.PyJWK(jwk, algorithm=algorithm)
    except jwt.PyJWTError as exc:
        raise KeyNotFound(f"key {jwk.get('kid')!r} is unusable: {exc}") from None


_caches: dict[str, JwksCache] = {}
_caches_lock = threading.Lock()


def cache_for(url: str) -> JwksCache:
    """The process-wide cache of one JWKS URL (its refetch throttle outlives settings reloads)."""
    with _caches_lock:
        if url not in _caches:
            _caches[url] = JwksCache(url)
        return _caches[url]


def forget_all() -> None:
    """Drop every cached key set (tests; a key rotation that must take effect at once)."""
    with _caches_lock:
        _caches.clear()


class TokenRejected(Exception):
    """A signed JWT failed verification; the message says why, never what the token holds."""


def verify(
    token: str,
    *,
    jwks_url: str,
    algorithms: list[str],
    audience: str | list[str],
    issuer: str,
    leeway: int,
    max_lifetime: int | None = None,
    typ: str = "",
) -> dict[str, Any]:
    """Verify a JWT signed by a key from `jwks_url`: one of the pinned asymmetric algorithms, a
    key found by `kid`, and `exp`, `iat`, `iss`, `aud` and `sub` all present and right.

    With `max_lifetime`, a token valid for longer than that (`exp` - `iat`) or issued longer ago
    is refused: a leaked assertion must not stay usable for weeks. With `typ`, the header's `typ`
    must be that value (compared without case, as JOSE says).

    The one place both the proxy assertions and the OIDC ID tokens are checked, so a rule added
    here holds for both.
    """
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        raise TokenRejected("it is not a JWT") from None
    algorithm = header.get("alg")
    if algorithm not in algorithms:
        raise TokenRejected(f"algorithm {str(algorithm)[:16]!r} is not accepted")
    if typ and str(header.get("typ", "")).lower() != typ.lower():
        raise TokenRejected(f"its typ is not {typ!r}")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid:
        raise TokenRejected("it names no key id")
    try:
        key = cache_for(jwks_url).key(kid, algorithm)
    except KeyNotFound as exc:
        raise TokenRejected(str(exc)) from None
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[algorithm],
            audience=audience,
            issuer=issuer,
            leeway=leeway,
            options={"require": ["exp", "iat", "iss", "aud", "sub"]},
        )
    except jwt.PyJWTError as exc:
        raise TokenRejected(f"it is invalid: {type(exc).__name__}") from None
    if max_lifetime is not None:
        _check_lifetime(claims, max_lifetime, leeway)
    return claims


def _check_lifetime(claims: dict[str, Any], max_lifetime: int, leeway: int) -> None:
    issued, expires = claims["iat"], claims["exp"]  # numbers: jwt.decode checked both
    if expires - issued > max_lifetime:
        raise TokenRejected(f"it is valid for longer than {max_lifetime} s")
    if time.time() - issued > max_lifetime + leeway:
        raise TokenRejected(f"it was issued more than {max_lifetime} s ago")
