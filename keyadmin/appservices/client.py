"""Client for the App Services client HTTP API: sessions and user API keys.

The only module in keyadmin that imports `requests`. One pooled session per process; every call
has a (connect, read) timeout and a total deadline (APPSERVICES_DEADLINE, connect to last body
byte), reads at most MAX_ANSWER_BYTES of answer (after decompression), follows no redirects,
ignores proxy variables and `.netrc`, and goes only to an allowlisted host (a location answer
also keeps the base URL's scheme and port). User-API-key calls carry the user's *refresh* token
(that is how App Services authorises them). Failures become typed `AppServicesError`s whose
`message` is keyadmin's own, fit to show a support engineer as it is (App Services' error text
goes to the log only); no message, log line or repr ever holds a token or secret.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import os
import re
import socket
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.cookiejar import DefaultCookiePolicy
from typing import Any
from urllib.parse import quote, urlsplit

import requests
import urllib3
from django.conf import settings
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_variables
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from keyadmin import logformat, origins
from keyadmin.appservices.errors import (
    MAX_KEYS_PER_USER,
    AppServicesError,
    BadCredentials,
    CreateOutcomeUnknown,
    HostNotAllowed,
    InvalidKeyId,
    InvalidKeyName,
    KeyLimitReached,
    KeyNameTaken,
    KeyNotFound,
    NotAllowed,
    RequestRejected,
    SessionEnded,
    SignInTokenRefused,
    UnknownApp,
    UpstreamGarbage,
    UpstreamUnavailable,
    UpstreamUnreachable,
)
from keyadmin.appsfile import AppConfig

logger = logging.getLogger("keyadmin.appservices")

KEY_ID_PATTERN = "[0-9a-f]{24}"
KEY_NAME_PATTERN = "[A-Za-z0-9_-]+"
MAX_KEY_NAME_LENGTH = 64

_KEY_ID = re.compile(KEY_ID_PATTERN)
_KEY_NAME = re.compile(KEY_NAME_PATTERN)
_CLIENT_ROOT = "/api/client/v2.0"
_PROVIDER = re.compile("[a-z0-9-]{1,40}")
_BRIDGE_LOGIN_ROUTE = "POST /app/{app}/auth/providers/custom-token/login"
# Texts of a refresh token App Services will never accept again, whatever the status (the SDKs
# treat 401 and 403 alike there): the session has ended, it is not a refusal of key management.
_DEAD_TOKEN_TEXTS = frozenset({"signature is invalid"})


# --- Values ---


@dataclass(frozen=True)
class ApiKey:
    id: str
    name: str
    disabled: bool

    @property
    def enabled(self) -> bool:
        return not self.disabled

    @property
    def created(self) -> datetime:
        # An ObjectId starts with its creation time in seconds.
        return datetime.fromtimestamp(int(self.id[:8], 16), tz=UTC)

    @property
    def short_id(self) -> str:
        # The last digits: the leading ones are a timestamp shared by keys made in one second.
        return self.id[-8:]


@dataclass(frozen=True)
class NewApiKey(ApiKey):
    key: str = field(default="", repr=False)


@dataclass(frozen=True)
class Tokens:
    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    user_id: str
    device_id: str
    hostname: str


@dataclass(frozen=True)
class ProviderIdentity:
    id: str
    provider_type: str


@dataclass(frozen=True)
class Profile:
    user_id: str
    type: str
    email: str | None
    name: str | None
    identities: tuple[ProviderIdentity, ...]


def check_key_id(key_id: str) -> str:
    if not isinstance(key_id, str) or not _KEY_ID.fullmatch(key_id):
        raise InvalidKeyId()
    return key_id


def check_key_name(name: str) -> str:
    if not isinstance(name, str) or not name:
        raise InvalidKeyName(_("Give the key a name."))
    if len(name) > MAX_KEY_NAME_LENGTH:
        raise InvalidKeyName(
            _("A key name can be at most %(max)d characters long.") % {"max": MAX_KEY_NAME_LENGTH}
        )
    if not _KEY_NAME.fullmatch(name):
        raise InvalidKeyName()
    return name


# --- Transport ---

# An answer is at most this many bytes once decompressed. A list of 20 keys is about 3 KB and a
# profile under 1 KB: 256 KB leaves App Services room to grow its answers, while a broken or
# hostile server can make a worker hold no more than this per request (32 pooled connections:
# 8 MB), however large or however compressed what it sends.
MAX_ANSWER_BYTES = 256 * 1024
_CHUNK_BYTES = 16 * 1024
# The deepest App Services answer, a profile, nests 3 levels; deeper JSON is not an answer.
MAX_ANSWER_DEPTH = 16
# Profile fields are shown on every page and kept in the session: an e-mail is at most 254.
MAX_PROFILE_TEXT = 256

_CONTROL_CHARACTERS = re.compile("[\x00-\x1f\x7f-\x9f]")
_SURROGATES = re.compile("[\ud800-\udfff]")
_DECODED_ENCODINGS = frozenset({"gzip", "x-gzip", "deflate"})

_http: requests.Session | None = None
_http_lock = threading.Lock()
_locations: dict[tuple[str, str], str] = {}
_locations_lock = threading.Lock()
# When a look-up ahead of need (AppServices.learn_location) last failed, per app: it is not
# tried again for LOCATION_RETRY_SECONDS, so a page view never waits on a failing App Services.
_location_failures: dict[tuple[str, str], float] = {}
LOCATION_RETRY_SECONDS = 60


# The connection ended before a whole answer: an idempotent call may be sent once more.
_CUT_SHORT = (requests.ConnectionError, requests.exceptions.ChunkedEncodingError)


class _AnswerTooLarge(Exception):
    pass


_batch = threading.local()


@contextlib.contextmanager
def calls_end_by(at: float) -> Iterator[None]:
    """Every call this thread makes inside the block ends by `at` (time.monotonic()), sooner
    than its own APPSERVICES_DEADLINE if need be: the total deadline of a multi-key action."""
    _batch.at = at
    try:
        yield
    finally:
        _batch.at = None


def _call_seconds() -> float:
    seconds = settings.APPSERVICES_DEADLINE
    at = getattr(_batch, "at", None)
    if at is not None:
        seconds = max(min(seconds, at - time.monotonic()), 0.001)
    return seconds


class _Deadline:
    """One call's total time, on the monotonic clock: past `at` its sockets are shut down."""

    def __init__(self, seconds: float) -> None:
        self.at = time.monotonic() + seconds
        self.expired = False
        self.handles: list[socket.socket] = []

    def remaining(self) -> float:
        return self.at - time.monotonic()

    def expire(self) -> None:
        self.expired = True
        for handle in self.handles:
            with contextlib.suppress(OSError):
                handle.shutdown(socket.SHUT_RDWR)


class _Watchdog:
    """Shuts down the connection of every call still running past its deadline.

    requests' timeouts apply to each socket operation, so a server that sends a byte just
    inside the read timeout holds a call for as long as it likes; shutting the socket down from
    this thread is what bounds the whole call: connect, headers and body. Each watched socket is
    a duplicate descriptor (shutdown acts on the socket they share), so the watchdog never
    touches the connection objects urllib3 owns, and closing it never closes theirs.
    """

    IDLE_SECONDS = 60.0

    def __init__(self) -> None:
        self._wake = threading.Condition()
        self._calls: set[_Deadline] = set()
        self._thread: threading.Thread | None = None
        self._wakes_at = 0.0  # when the thread next looks, on its own (monotonic)

    @contextlib.contextmanager
    def watching(self, deadline: _Deadline) -> Iterator[None]:
        with self._wake:
            self._calls.add(deadline)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="appservices-deadlines", daemon=True
                )
                self._thread.start()
            elif deadline.at < self._wakes_at:
                # Woken only when this deadline comes before the one it waits for: every call
                # has the same budget, so under load that is about once per APPSERVICES_DEADLINE,
                # not a thread switch per call.
                self._wake.notify()
        _current.deadline = deadline
        try:
            yield
        finally:
            _current.deadline = None
            with self._wake:
                self._calls.discard(deadline)
                for handle in deadline.handles:
                    handle.close()
                deadline.handles.clear()

    def detach(self, deadline: _Deadline) -> bool:
        """Stop watching this call's sockets; False if its deadline already shut them down.

        Called before a connection goes back to the pool: once another call may take it, a late
        shutdown here would cut that call's answer (a create's, say) instead of this one's.
        """
        with self._wake:
            for handle in deadline.handles:
                handle.close()
            deadline.handles.clear()
            return not deadline.expired

    def attach(self, sock: socket.socket | None) -> None:
        """Watch `sock` for the call this thread is making (if any)."""
        deadline = getattr(_current, "deadline", None)
        if deadline is None or sock is None:
            return
        try:
            handle = socket.socket(fileno=os.dup(sock.fileno()))
        except OSError:
            return
        with self._wake:
            deadline.handles.append(handle)
            if deadline.expired or deadline.at <= time.monotonic():
                deadline.expire()

    def _run(self) -> None:
        with self._wake:
            idle_since = time.monotonic()
            while True:
                now = time.monotonic()
                for deadline in [d for d in self._calls if d.at <= now and not d.expired]:
                    deadline.expire()
                pending = [d.at for d in self._calls if not d.expired]
                if not self._calls and now - idle_since > self.IDLE_SECONDS:
                    self._thread = None
                    return
                if self._calls:
                    idle_since = now
                timeout = min(pending) - now if pending else self.IDLE_SECONDS
                self._wakes_at = now + timeout
                self._wake.wait(timeout)


_current = threading.local()
_watchdog = _Watchdog()


def _after_fork() -> None:
    # A forked worker has no watchdog thread, may have been forked while a lock was held, and
    # must not share its parent's pooled connections (gunicorn's preload_app forks after import).
    global _http, _http_lock
    _watchdog.__init__()
    _http = None
    _http_lock = threading.Lock()


os.register_at_fork(after_in_child=_after_fork)


class _WatchedHTTPConnection(HTTPConnection):
    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        _watchdog.attach(sock)
        return sock

    def request(self, *args: Any, **kwargs: Any) -> None:
        _watchdog.attach(self.sock)  # a pooled connection, already open (a new one: None)
        super().request(*args, **kwargs)


class _WatchedHTTPSConnection(HTTPSConnection):
    def _new_conn(self) -> socket.socket:
        sock = super()._new_conn()
        _watchdog.attach(sock)
        return sock

    def request(self, *args: Any, **kwargs: Any) -> None:
        _watchdog.attach(self.sock)
        super().request(*args, **kwargs)


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


class _WatchedAdapter(HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": _WatchedHTTPPool,
            "https": _WatchedHTTPSPool,
        }


def _session() -> requests.Session:
    global _http
    with _http_lock:
        if _http is None:
            session = requests.Session()
            session.trust_env = False  # proxy variables and .netrc must never steer tokens
            session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
            session.headers["Accept"] = "application/json"
            # Only what _read_capped can inflate within the cap.
            session.headers["Accept-Encoding"] = "gzip, deflate"
            adapter = _WatchedAdapter(pool_connections=4, pool_maxsize=32, max_retries=0)
            session.mount("https://", adapter)
            session.mount("http://", adapter)
            _http = session
        return _http


def forget_locations() -> None:
    """Drop cached location answers (tests, and a settings change at run time)."""
    with _locations_lock:
        _locations.clear()
        _location_failures.clear()


def _allowed(allowed_hosts: tuple[str, ...] | list[str] | None) -> tuple[str, ...] | list[str]:
    return settings.APPSERVICES_ALLOWED_HOSTS if allowed_hosts is None else allowed_hosts


def check_origin(url: str, allowed_hosts: tuple[str, ...] | list[str] | None = None) -> str:
    """Return `scheme://host[:port]` of `url` if tokens may be sent there, else raise.

    `allowed_hosts`: the app's allowlist (None: APPSERVICES_ALLOWED_HOSTS, the single app's).
    """
    if origins.origin_problem(url, _allowed(allowed_hosts)):
        raise HostNotAllowed()
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def check_location_origin(
    url: str, base_url: str, allowed_hosts: tuple[str, ...] | list[str] | None = None
) -> str:
    """`check_origin` for an origin a location answer named: same scheme and port as
    `base_url` too, unless the allowlist names that origin itself."""
    problem = origins.location_problem(url, base_url, _allowed(allowed_hosts))
    if problem:
        logger.warning("the location answer %s", problem)
        raise HostNotAllowed()
    return check_origin(url, allowed_hosts)


def _connection_never_made(exc: requests.ConnectionError) -> bool:
    """True when the request cannot have reached App Services (refused, DNS, connect timeout)."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, NewConnectionError | ConnectTimeoutError)


def _read_capped(response: requests.Response) -> bytes:
    """The answer's body, decompressed, or `_AnswerTooLarge` past MAX_ANSWER_BYTES.

    Read raw and inflated here, at most MAX_ANSWER_BYTES + 1 bytes at a time, so that neither a
    large answer nor a small compressed one that inflates to gigabytes is ever held whole.
    """
    encoding = response.headers.get("Content-Encoding", "").strip().lower()
    if encoding not in ("", "identity", *_DECODED_ENCODINGS):
        raise UpstreamGarbage(status=response.status_code)
    declared = response.headers.get("Content-Length", "")
    if declared.isdigit() and int(declared) > MAX_ANSWER_BYTES:
        raise _AnswerTooLarge()
    inflater = zlib.decompressobj(zlib.MAX_WBITS | 32) if encoding in _DECODED_ENCODINGS else None
    body = bytearray()
    received = 0
    for chunk in response.raw.stream(_CHUNK_BYTES, decode_content=False):
        received += len(chunk)
        if received > MAX_ANSWER_BYTES:
            raise _AnswerTooLarge()
        if inflater is None:
            body += chunk
            continue
        try:
            body += inflater.decompress(chunk, MAX_ANSWER_BYTES + 1 - len(body))
        except zlib.error:
            raise UpstreamGarbage(status=response.status_code) from None
        if inflater.unconsumed_tail or len(body) > MAX_ANSWER_BYTES:
            raise _AnswerTooLarge()
    if inflater is not None:
        body += inflater.flush()
        if len(body) > MAX_ANSWER_BYTES:
            raise _AnswerTooLarge()
    return bytes(body)


@sensitive_variables()
def _exchange(
    method: str, url: str, headers: dict, body: dict | None, deadline: _Deadline
) -> tuple[int, str, bytes]:
    """Send one request; return (status, content type, body), reading no more than the cap."""
    connect_timeout, read_timeout = settings.APPSERVICES_TIMEOUT
    left = max(deadline.remaining(), 0.001)
    response = _session().request(
        method,
        url,
        json=body,
        headers=headers,
        timeout=(min(connect_timeout, left), min(read_timeout, left)),
        allow_redirects=False,
        stream=True,
    )
    try:
        content_type = response.headers.get("Content-Type", "")
        if 300 <= response.status_code < 400:
            return response.status_code, content_type, b""
        try:
            content = _read_capped(response)
        except urllib3.exceptions.ReadTimeoutError as exc:
            raise requests.exceptions.ReadTimeout() from exc  # slow, not cut: never retried
        except (urllib3.exceptions.HTTPError, http.client.HTTPException, OSError) as exc:
            raise requests.exceptions.ChunkedEncodingError() from exc
        if _watchdog.detach(deadline):
            response.raw.release_conn()  # read to the end: it may serve the next call
        return response.status_code, content_type, content
    finally:
        response.close()


# Who wants to know about each upstream exchange (metrics, Server-Timing): each is called with
# (method, route template, outcome, seconds), where outcome is the HTTP status or the kind of
# failure. Never a URL, token or body: the route is the template, ids stay out.
UPSTREAM_OBSERVERS: list[Callable[[str, str, str, float], None]] = []


def _failure_kind(exc: BaseException) -> str:
    if isinstance(exc, _AnswerTooLarge):
        return "too-large"
    if isinstance(exc, UpstreamGarbage):
        return "garbage"
    if isinstance(exc, requests.Timeout):
        return "timeout"
    if isinstance(exc, requests.ConnectionError):
        return "connection"
    return "error"


@contextlib.contextmanager
def _observed(method: str, route: str) -> Iterator[dict]:
    started = time.monotonic()
    answer: dict = {}
    outcome = "error"
    try:
        yield answer
        outcome = str(answer.get("status", "error"))
    except BaseException as exc:
        outcome = _failure_kind(exc)
        raise
    finally:
        seconds = time.monotonic() - started
        for observer in UPSTREAM_OBSERVERS:
            try:
                observer(method, route, outcome, seconds)
            except Exception:
                # Counting must never fail a call that App Services already answered.
                logger.exception("an upstream observer failed")


@sensitive_variables()
def _call(
    method: str,
    origin: str,
    path: str,
    *,
    route: str,
    token: str | None = None,
    body: dict | None = None,
    retry: bool = False,
    login: bool = False,
) -> Any:
    """Send one request and return its parsed JSON (None for an empty success).

    `route` is the path template, for logs and messages (ids and tokens stay out of logs).
    `retry` allows one more attempt after a connection error: only for idempotent calls, and
    only within the call's deadline (APPSERVICES_DEADLINE, for every attempt together).
    """
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    url = origin + path
    attempts = 2 if retry else 1
    deadline = _Deadline(_call_seconds())
    too_slow = UpstreamUnavailable(
        _("App Services did not answer in time. Try again in a moment."),
        method=method,
        path=route,
    )
    for attempt in range(1, attempts + 1):
        started = time.monotonic()
        try:
            with _observed(method, route) as answer, _watchdog.watching(deadline):
                status, content_type, content = _exchange(method, url, headers, body, deadline)
                answer["status"] = status
        except _AnswerTooLarge:
            logger.warning("%s %s answered more than %d bytes", method, route, MAX_ANSWER_BYTES)
            raise UpstreamGarbage(
                _("App Services sent an answer larger than keyadmin accepts (%(limit)d KB).")
                % {"limit": MAX_ANSWER_BYTES // 1024},
                method=method,
                path=route,
            ) from None
        except UpstreamGarbage as exc:
            logger.warning("%s %s answered in an encoding keyadmin does not read", method, route)
            raise UpstreamGarbage(status=exc.status, method=method, path=route) from None
        except requests.RequestException as exc:
            if deadline.expired or deadline.remaining() <= 0:
                logger.warning("%s %s passed its deadline", method, route)
                raise too_slow from None
            if isinstance(exc, requests.Timeout) and not isinstance(exc, requests.ConnectTimeout):
                logger.warning("%s %s timed out", method, route)
                raise too_slow from None
            if not isinstance(exc, _CUT_SHORT):
                logger.warning("%s %s failed: %s", method, route, type(exc).__name__)
                raise UpstreamUnavailable(method=method, path=route) from None
            never_made = isinstance(exc, requests.ConnectionError) and _connection_never_made(exc)
            logger.warning("%s %s failed: %s", method, route, type(exc).__name__)
            if attempt < attempts:
                continue
            if never_made:
                raise UpstreamUnreachable(method=method, path=route) from None
            raise UpstreamUnavailable(
                _("App Services closed the connection before answering. Try again."),
                method=method,
                path=route,
            ) from None
        elapsed_ms = (time.monotonic() - started) * 1000
        logger.debug("%s %s -> %s in %.0f ms", method, route, status, elapsed_ms)
        return _read(status, content_type, content, method, route, login=login)
    raise AssertionError("unreachable")  # pragma: no cover


def _parse(content: bytes) -> Any:
    """The JSON in `content`, or `_Unreadable` when it is not JSON an answer can be.

    Besides invalid JSON: nesting past MAX_ANSWER_DEPTH (which would otherwise end in a
    RecursionError) and strings holding lone surrogates, which no UTF-8 page or session can
    hold (an e-mail with one would break every page the staff session shows).
    """
    try:
        data = json.loads(content)
    except (ValueError, RecursionError):
        raise _Unreadable() from None
    pending: list[tuple[Any, int]] = [(data, 1)]
    while pending:  # visits each value once: bounded by the size cap
        value, depth = pending.pop()
        if depth > MAX_ANSWER_DEPTH:
            raise _Unreadable()
        if isinstance(value, str):
            if _SURROGATES.search(value):
                raise _Unreadable()
        elif isinstance(value, dict):
            for name, item in value.items():
                if _SURROGATES.search(name):
                    raise _Unreadable()
                pending.append((item, depth + 1))
        elif isinstance(value, list):
            pending.extend((item, depth + 1) for item in value)
    return data


class _Unreadable(Exception):
    pass


@sensitive_variables()
def _read(
    status: int, content_type: str, content: bytes, method: str, route: str, *, login: bool
) -> Any:
    is_json = content_type.split(";")[0].strip().lower() == "application/json"
    if 200 <= status < 300:
        if not content:
            return None
        if not is_json:
            raise UpstreamGarbage(status=status, method=method, path=route)
        try:
            return _parse(content)
        except _Unreadable:
            logger.warning("%s %s answered %s with unreadable JSON", method, route, status)
            raise UpstreamGarbage(status=status, method=method, path=route) from None
    payload: dict = {}
    if is_json and content:
        try:
            parsed = _parse(content)
            payload = parsed if isinstance(parsed, dict) else {}
        except _Unreadable:
            payload = {}
    raise _error_for(status, payload, method, route, login=login, is_json=is_json)


def _error_for(
    status: int, payload: dict, method: str, route: str, *, login: bool, is_json: bool
) -> AppServicesError:
    code = payload.get("error_code") if isinstance(payload.get("error_code"), str) else None
    text = payload.get("error") if isinstance(payload.get("error"), str) else ""
    where = {"status": status, "error_code": code, "method": method, "path": route}
    # The upstream text goes to the log only: a message staff see is always keyadmin's own.
    logger.warning(
        "%s %s answered %s %s %s",
        method,
        route,
        status,
        logformat.clean_path(code or "", 80),
        logformat.clean_path(text, 200),
    )
    if 300 <= status < 400:
        return UpstreamGarbage(
            _("App Services answered with a redirect, which keyadmin never follows."), **where
        )
    if not login and status in (401, 403) and text in _DEAD_TOKEN_TEXTS:
        return SessionEnded(**where)
    if (
        login
        and route == _BRIDGE_LOGIN_ROUTE
        and 400 <= status < 500
        and (code in ("InvalidSession", "AuthError") or text == "unauthorized")
    ):
        # InvalidSession: the app has no custom JWT provider on; AuthError/"unauthorized": it
        # does not trust keyadmin's key or audience. Either way an administrator must act.
        return SignInTokenRefused(**where)
    if status == 401:
        return BadCredentials(**where) if login else SessionEnded(**where)
    if status == 403 and not login:  # a refused sign-in is not about managing keys
        return NotAllowed(**where)
    if status == 404 and code == "APIKeyNotFound":
        return KeyNotFound(**where)
    if code == "APIKeyAlreadyExists" or (status == 409 and route == "POST /auth/api_keys"):
        return KeyNameTaken(**where)
    if code == "APIKeyLimitExceeded" or (
        route == "POST /auth/api_keys" and re.search(r"maximum|limit", text, re.I)
    ):
        return KeyLimitReached(**where)
    if (
        status == 400
        and route == "POST /auth/api_keys"
        and (code == "InvalidParameter" or (code is None and text.startswith("'name'")))
    ):
        # The real service sends "'name' is a required string" with no error_code at all.
        return InvalidKeyName(**where)
    if status == 429:
        return UpstreamUnavailable(
            _("App Services is limiting requests right now. Wait a moment, then retry."), **where
        )
    if status >= 500:
        if not is_json:
            return UpstreamGarbage(
                _("App Services answered with an error page (HTTP %(status)d). Try again soon.")
                % {"status": status},
                **where,
            )
        return UpstreamUnavailable(
            _("App Services had an internal error (HTTP %(status)d). Try again in a moment.")
            % {"status": status},
            **where,
        )
    if status == 404 and route.startswith("GET /app/"):
        return UnknownApp(**where)  # AppServices names the app: only it knows which one
    return RequestRejected(**where)


def _expect(data: Any, *fields: str) -> dict:
    if not isinstance(data, dict) or not all(isinstance(data.get(f), str) for f in fields):
        raise UpstreamGarbage()
    return data


def _profile_text(value: str) -> str:
    """`value` if it is fit to keep in the session and show on every page, else UpstreamGarbage.

    Lone surrogates are refused when the answer is parsed; control characters and overlong
    values here, before anything reaches the session.
    """
    if len(value) > MAX_PROFILE_TEXT or _CONTROL_CHARACTERS.search(value):
        raise UpstreamGarbage()
    return value


def _optional_text(value: Any) -> str | None:
    return _profile_text(value) if isinstance(value, str) else None


def _key_from(data: Any) -> ApiKey:
    item = _expect(data, "_id", "name")
    if not _KEY_ID.fullmatch(item["_id"]) or not isinstance(item.get("disabled"), bool):
        raise UpstreamGarbage()
    return ApiKey(id=item["_id"], name=item["name"], disabled=item["disabled"])


# --- The app: location and login ---


def _login_route(provider: str) -> str:
    """The login's route for logs and errors: it names the provider, so a refused custom-token
    login (the SSO bridge) reads differently from a wrong password."""
    shown = provider if _PROVIDER.fullmatch(provider) else "{provider}"
    return f"POST /app/{{app}}/auth/providers/{shown}/login"


class AppServices:
    """App-scoped calls: where the app lives, and signing a user in.

    `app` (an AppConfig) gives the base URL, app id and allowlist; without it, the single app of
    the APPSERVICES_* settings (or the `base_url` / `app_id` given).
    """

    def __init__(
        self,
        app: AppConfig | None = None,
        *,
        base_url: str | None = None,
        app_id: str | None = None,
    ) -> None:
        if app is not None:
            base_url, app_id = app.base_url, app.app_id
        self.name = app.name if app is not None else (app_id or settings.APPSERVICES_APP_ID)
        self.allowed_hosts = tuple(app.allowed_hosts) if app is not None else None
        self.base_url = (base_url or settings.APPSERVICES_BASE_URL).rstrip("/")
        self.app_id = app_id or settings.APPSERVICES_APP_ID
        if not self.app_id:
            raise RequestRejected(_("APPSERVICES_APP_ID is not set."))

    @property
    def _app_path(self) -> str:
        return f"{_CLIENT_ROOT}/app/{quote(self.app_id, safe='')}"

    def _location(self, origin: str, *, retry: bool) -> Any:
        route = "GET /app/{app}/location"
        try:
            return _call("GET", origin, f"{self._app_path}/location", route=route, retry=retry)
        except UnknownApp as error:
            raise UnknownApp.of(self.app_id, self.name, error) from None

    def hostname(self) -> str:
        """The origin this app's requests go to, looked up once per process and app."""
        cache_key = (self.base_url, self.app_id)
        with _locations_lock:
            cached = _locations.get(cache_key)
        origin = check_origin(self.base_url, self.allowed_hosts)
        if cached:
            # The allowlist may have changed.
            return check_location_origin(cached, origin, self.allowed_hosts)
        data = self._location(origin, retry=True)
        hostname = check_location_origin(
            _expect(data, "hostname")["hostname"].rstrip("/"), origin, self.allowed_hosts
        )
        with _locations_lock:
            _locations[cache_key] = hostname
        return hostname

    def learn_location(self) -> bool:
        """Look up where the app lives ahead of need, unless it is known (no request) or a
        look-up failed in the last LOCATION_RETRY_SECONDS; whether it is known now.

        For a page that offers an action, so that the action itself costs only its own request.
        Never raises AppServicesError: the failure is logged, and the action looks up again
        and reports it in place.
        """
        cache_key = (self.base_url, self.app_id)
        with _locations_lock:
            if cache_key in _locations:
                return True
            failed = _location_failures.get(cache_key)
        if failed is not None and time.monotonic() - failed < LOCATION_RETRY_SECONDS:
            return False
        try:
            self.hostname()
        except AppServicesError as error:
            logger.warning("looking up the app's location ahead of need failed (%s)", error.status)
            with _locations_lock:
                _location_failures[cache_key] = time.monotonic()
            return False
        return True

    def check_location(self) -> str:
        """Ask where this app lives now, past the cache, without a retry (readiness checks)."""
        origin = check_origin(self.base_url, self.allowed_hosts)
        data = self._location(origin, retry=False)
        return check_location_origin(
            _expect(data, "hostname")["hostname"].rstrip("/"), origin, self.allowed_hosts
        )

    @sensitive_variables()
    def login(self, provider: str, credentials: dict[str, str]) -> Tokens:
        hostname = self.hostname()
        data = _call(
            "POST",
            hostname,
            f"{self._app_path}/auth/providers/{quote(provider, safe='')}/login",
            route=_login_route(provider),
            body=dict(credentials),
            login=True,
        )
        tokens = _expect(data, "access_token", "refresh_token", "user_id", "device_id")
        return Tokens(
            access_token=tokens["access_token"],
            refresh_token=tokens["refresh_token"],
            user_id=_profile_text(tokens["user_id"]),
            device_id=tokens["device_id"],
            hostname=hostname,
        )

    @sensitive_variables()
    def login_email_password(self, email: str, password: str) -> Tokens:
        return self.login("local-userpass", {"username": email, "password": password})

    @sensitive_variables()
    def register_email_password(self, email: str, password: str) -> None:
        _call(
            "POST",
            self.hostname(),
            f"{self._app_path}/auth/providers/local-userpass/register",
            route="POST /app/{app}/auth/providers/local-userpass/register",
            body={"email": email, "password": password},
        )


# --- A signed-in user: session and API keys ---


class UserSession:
    """Calls made on behalf of one signed-in App Services user.

    `hostname` comes from the sign-in (kept in the staff member's session), so key calls need
    no location lookup; it is checked against the allowlist again on every call all the same.
    """

    @sensitive_variables()
    def __init__(
        self,
        hostname: str,
        refresh_token: str,
        access_token: str | None = None,
        allowed_hosts: tuple[str, ...] | None = None,
    ) -> None:
        self.hostname = hostname
        self._refresh_token = refresh_token
        self._access_token = access_token
        self.allowed_hosts = allowed_hosts  # the app's allowlist; None: APPSERVICES_ALLOWED_HOSTS

    def __repr__(self) -> str:
        return f"UserSession({self.hostname})"

    def _keys_call(self, method: str, path: str, route: str, **kwargs: Any) -> Any:
        return _call(
            method,
            check_origin(self.hostname, self.allowed_hosts),
            _CLIENT_ROOT + path,
            route=route,
            token=self._refresh_token,
            **kwargs,
        )

    def profile(self) -> Profile:
        if not self._access_token:
            self._access_token = self.refresh()
        data = _call(
            "GET",
            check_origin(self.hostname, self.allowed_hosts),
            f"{_CLIENT_ROOT}/auth/profile",
            route="GET /auth/profile",
            token=self._access_token,
            retry=True,
        )
        profile = _expect(data, "user_id")
        user_data = profile.get("data") if isinstance(profile.get("data"), dict) else {}
        listed = profile.get("identities")
        identities = tuple(
            ProviderIdentity(
                id=_profile_text(str(item.get("id", ""))),
                provider_type=_profile_text(str(item.get("provider_type", ""))),
            )
            for item in (listed if isinstance(listed, list) else [])
            if isinstance(item, dict)
        )
        return Profile(
            user_id=_profile_text(profile["user_id"]),
            type=_profile_text(str(profile.get("type", "normal"))),
            email=_optional_text(user_data.get("email")),
            name=_optional_text(user_data.get("name")),
            identities=identities,
        )

    def refresh(self) -> str:
        data = self._keys_call("POST", "/auth/session", "POST /auth/session")
        self._access_token = _expect(data, "access_token")["access_token"]
        return self._access_token

    def logout(self) -> None:
        """Revoke the refresh token upstream (access tokens already issued live on)."""
        self._keys_call("DELETE", "/auth/session", "DELETE /auth/session", retry=True)

    def delete_user(self) -> None:
        """Delete this App Services user, its keys and sessions (`DELETE /auth/delete`).

        Authorised by the *access* token (refreshed first when none was given). Never retried:
        a second request after a first that worked would find no user and read as a session
        that has ended, hiding that the delete happened.
        """
        if not self._access_token:
            self._access_token = self.refresh()
        _call(
            "DELETE",
            check_origin(self.hostname, self.allowed_hosts),
            f"{_CLIENT_ROOT}/auth/delete",
            route="DELETE /auth/delete",
            token=self._access_token,
        )

    def list_api_keys(self) -> list[ApiKey]:
        data = self._keys_call("GET", "/auth/api_keys", "GET /auth/api_keys", retry=True)
        if not isinstance(data, list) or len(data) > MAX_KEYS_PER_USER:
            # More than App Services lets one user have is not a list of this user's keys.
            raise UpstreamGarbage(method="GET", path="GET /auth/api_keys")
        return [_key_from(item) for item in data]

    def get_api_key(self, key_id: str) -> ApiKey:
        path = f"/auth/api_keys/{check_key_id(key_id)}"
        return _key_from(self._keys_call("GET", path, "GET /auth/api_keys/{id}", retry=True))

    @sensitive_variables()
    def create_api_key(self, name: str) -> NewApiKey:
        """Create a key; the answer holds its secret, the only time App Services gives it.

        Never retried: a second POST could make a second key. When the request may have
        reached App Services but no usable answer came back, raise `CreateOutcomeUnknown`.
        """
        check_key_name(name)
        route = "POST /auth/api_keys"
        try:
            data = self._keys_call("POST", "/auth/api_keys", route, body={"name": name})
        except UpstreamUnreachable:
            raise
        except UpstreamUnavailable as exc:
            if exc.status == 429:
                raise  # refused by rate limiting before any work: nothing was created
            raise CreateOutcomeUnknown(
                status=exc.status, error_code=exc.error_code, method="POST", path=route
            ) from None
        except UpstreamGarbage as exc:
            if exc.status is not None and 300 <= exc.status < 400:
                raise
            raise CreateOutcomeUnknown(
                status=exc.status, error_code=exc.error_code, method="POST", path=route
            ) from None
        created = _key_from(data)
        secret = data.get("key")
        if not isinstance(secret, str) or not secret:
            raise CreateOutcomeUnknown(method="POST", path=route)
        return NewApiKey(id=created.id, name=created.name, disabled=created.disabled, key=secret)

    def enable_api_key(self, key_id: str) -> None:
        path = f"/auth/api_keys/{check_key_id(key_id)}/enable"
        self._keys_call("PUT", path, "PUT /auth/api_keys/{id}/enable", retry=True)

    def disable_api_key(self, key_id: str) -> None:
        path = f"/auth/api_keys/{check_key_id(key_id)}/disable"
        self._keys_call("PUT", path, "PUT /auth/api_keys/{id}/disable", retry=True)

    def delete_api_key(self, key_id: str) -> None:
        path = f"/auth/api_keys/{check_key_id(key_id)}"
        self._keys_call("DELETE", path, "DELETE /auth/api_keys/{id}", retry=True)
