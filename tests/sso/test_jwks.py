# ruff: noqa: F811 - pytest fixtures are imported, then named as test arguments
"""The JWKS cache refetches one at a time, and never makes requests with known keys wait."""

from __future__ import annotations

import threading
import time

import pytest

from keyadmin.sso import jwks
from tests.sso.fixtures import (
    RSA_KID,
    jwks_server,  # noqa: F401 - fixture
    keys,  # noqa: F401 - fixture
)

BOUND = 5.0  # seconds: only a request stuck behind the held fetch (held up to 30 s) reaches it


def _until(condition, limit: float = BOUND) -> None:
    deadline = time.monotonic() + limit
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)


def _in_thread(target) -> tuple[threading.Thread, list]:
    outcome: list = []

    def run():
        try:
            outcome.append(target())
        except jwks.KeyNotFound as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


@pytest.fixture
def slow_refetch(jwks_server, keys):
    """A cache holding the provider's keys, and a provider whose next answer waits for `hold`."""
    cache = jwks.JwksCache(jwks_server.url, min_refetch=0)
    cache.key(RSA_KID, "RS256")
    jwks_server.document = {"keys": [*keys.jwks()["keys"], keys.jwk("rsa", "rsa-2")]}
    jwks_server.hold = threading.Event()
    yield cache, jwks_server
    jwks_server.hold.set()


def test_a_known_key_is_served_while_another_request_refetches(slow_refetch):
    cache, server = slow_refetch
    refetch, refetched = _in_thread(lambda: cache.key("rsa-2", "RS256"))
    _until(lambda: len(server.hits) == 2)
    assert len(server.hits) == 2, "the unknown kid did not start a refetch"

    known, served = _in_thread(lambda: cache.key(RSA_KID, "RS256"))
    known.join(BOUND)
    finished_while_held = not known.is_alive()
    server.hold.set()
    refetch.join(BOUND)

    assert finished_while_held, "a request with a known kid waited for the provider"
    assert isinstance(served[0], jwks.jwt.PyJWK)
    assert isinstance(refetched[0], jwks.jwt.PyJWK)  # the rotated-in key arrived


def test_requests_for_an_unknown_key_share_one_refetch(slow_refetch):
    """The second request either waits for the fetch in flight or finds the key it brought."""
    cache, server = slow_refetch
    first, got_first = _in_thread(lambda: cache.key("rsa-2", "RS256"))
    _until(lambda: len(server.hits) == 2)
    second, got_second = _in_thread(lambda: cache.key("rsa-2", "RS256"))

    server.hold.set()
    first.join(BOUND)
    second.join(BOUND)

    assert len(server.hits) == 2  # the first fetch, then one refetch for both
    assert isinstance(got_first[0], jwks.jwt.PyJWK)
    assert isinstance(got_second[0], jwks.jwt.PyJWK)
