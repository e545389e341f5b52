"""The HTTP session for identity-provider calls (JWKS, OIDC token and userinfo endpoints).

Like the App Services client: a timeout on every call, no redirects followed, proxy variables and
`.netrc` ignored, so where identity material comes from is exactly what the settings say.
"""

from __future__ import annotations

import threading

import requests
from urllib3.exceptions import HTTPError as Urllib3Error

TIMEOUT = (3.05, 10.0)
MAX_BODY = 256 * 1024  # a JWKS or token answer is a few KiB; refuse to buffer more

_local = threading.local()


class FetchError(Exception):
    pass


def session() -> requests.Session:
    # One session per thread: requests does not promise a shared Session is thread-safe.
    current = getattr(_local, "session", None)
    if current is None:
        current = requests.Session()
        current.trust_env = False
        _local.session = current
    return current


def request(method: str, url: str, **kwargs) -> requests.Response:
    """`method url`, refusing redirects and oversized answers; `FetchError` on any failure."""
    try:
        response = session().request(
            method, url, timeout=TIMEOUT, allow_redirects=False, stream=True, **kwargs
        )
        try:
            body = response.raw.read(MAX_BODY + 1, decode_content=True)
        finally:
            response.close()
    except (requests.RequestException, Urllib3Error, OSError) as exc:
        raise FetchError(f"{type(exc).__name__} from {url}") from None
    if len(body) > MAX_BODY:
        raise FetchError(f"the answer from {url} is larger than {MAX_BODY} bytes")
    if 300 <= response.status_code < 400:
        raise FetchError(f"{url} answered a redirect ({response.status_code}); not followed")
    response._content = body
    return response
