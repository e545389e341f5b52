"""Client for the App Services client HTTP API: sessions and user API keys.

The only module in keyadmin that imports `requests`. One pooled session per process; every call
has a (connect, read) timeout, follows no redirects, ignores proxy variables and `.netrc`, and
goes only to an allowlisted host. User-API-key calls carry the user's *refresh* token (that is how
App Services authorises them). Failures become typed `AppServicesError`s whose `message` can be
shown to a support engineer as it is; no message, log line or repr ever holds a token or secret.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.cookiejar import DefaultCookiePolicy
from typing import Any
from urllib.parse import quote, urlsplit

import requests
from django.conf import settings
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_variables
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

from keyadmin import origins
from keyadmin.appservices.errors import (
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
    UpstreamGarbage,
    UpstreamUnavailable,
    UpstreamUnreachable,
)

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

_http: requests.Session | None = None
_http_lock = threading.Lock()
_locations: dict[tuple[str, str], str] = {}
_locations_lock = threading.Lock()


def _session() -> requests.Session:
    global _http
    with _http_lock:
        if _http is None:
            session = requests.Session()
            session.trust_env = False  # proxy variables and .netrc must never steer tokens
            session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
            session.headers["Accept"] = "application/json"
            adapter = HTTPAdapter(pool_connections=4, pool_maxsize=32, max_retries=0)
            session.mount("https://", adapter)
            session.mount("http://", adapter)
            _http = session
        return _http


def forget_locations() -> None:
    """Drop cached location answers (tests, and a settings change at run time)."""
    with _locations_lock:
        _locations.clear()


def check_origin(url: str) -> str:
    """Return `scheme://host[:port]` of `url` if tokens may be sent there, else raise."""
    if origins.origin_problem(url, settings.APPSERVICES_ALLOWED_HOSTS):
        raise HostNotAllowed()
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _connection_never_made(exc: requests.ConnectionError) -> bool:
    """True when the request cannot have reached App Services (refused, DNS, connect timeout)."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, NewConnectionError | ConnectTimeoutError)


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
    `retry` allows one more attempt after a connection error: only for idempotent calls.
    """
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    url = origin + path
    attempts = 2 if retry else 1
    for attempt in range(1, attempts + 1):
        started = time.monotonic()
        try:
            response = _session().request(
                method,
                url,
                json=body,
                headers=headers,
                timeout=settings.APPSERVICES_TIMEOUT,
                allow_redirects=False,
            )
        except requests.ConnectionError as exc:
            never_made = _connection_never_made(exc)
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
        except requests.Timeout:
            logger.warning("%s %s timed out", method, route)
            raise UpstreamUnavailable(
                _("App Services did not answer in time. Try again in a moment."),
                method=method,
                path=route,
            ) from None
        except requests.RequestException as exc:
            logger.warning("%s %s failed: %s", method, route, type(exc).__name__)
            raise UpstreamUnavailable(method=method, path=route) from None
        elapsed_ms = (time.monotonic() - started) * 1000
        logger.debug("%s %s -> %s in %.0f ms", method, route, response.status_code, elapsed_ms)
        return _read(response, method, route, login=login)
    raise AssertionError("unreachable")  # pragma: no cover


@sensitive_variables()
def _read(response: requests.Response, method: str, route: str, *, login: bool) -> Any:
    status = response.status_code
    content_type = response.headers.get("Content-Type", "")
    is_json = content_type.split(";")[0].strip().lower() == "application/json"
    if 200 <= status < 300:
        if not response.content:
            return None
        if not is_json:
            raise UpstreamGarbage(status=status, method=method, path=route)
        try:
            return response.json()
        except ValueError:
            raise UpstreamGarbage(status=status, method=method, path=route) from None
    payload: dict = {}
    if is_json:
        try:
            parsed = response.json()
            payload = parsed if isinstance(parsed, dict) else {}
        except ValueError:
            payload = {}
    raise _error_for(status, payload, method, route, login=login, is_json=is_json)


def _error_for(
    status: int, payload: dict, method: str, route: str, *, login: bool, is_json: bool
) -> AppServicesError:
    code = payload.get("error_code") if isinstance(payload.get("error_code"), str) else None
    text = payload.get("error") if isinstance(payload.get("error"), str) else ""
    where = {"status": status, "error_code": code, "method": method, "path": route}
    logger.warning("%s %s answered %s %s", method, route, status, code or "")
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
        return RequestRejected(
            _("App Services does not know the app id %(app)s. Check APPSERVICES_APP_ID.")
            % {"app": settings.APPSERVICES_APP_ID},
            **where,
        )
    if text:
        return RequestRejected(
            _("App Services refused the request: %(reason)s") % {"reason": text[:200]}, **where
        )
    return RequestRejected(**where)


def _expect(data: Any, *fields: str) -> dict:
    if not isinstance(data, dict) or not all(isinstance(data.get(f), str) for f in fields):
        raise UpstreamGarbage()
    return data


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
    """App-scoped calls: where the app lives, and signing a user in."""

    def __init__(self, base_url: str | None = None, app_id: str | None = None) -> None:
        self.base_url = (base_url or settings.APPSERVICES_BASE_URL).rstrip("/")
        self.app_id = app_id or settings.APPSERVICES_APP_ID
        if not self.app_id:
            raise RequestRejected(_("APPSERVICES_APP_ID is not set."))

    @property
    def _app_path(self) -> str:
        return f"{_CLIENT_ROOT}/app/{quote(self.app_id, safe='')}"

    def hostname(self) -> str:
        """The origin this app's requests go to, looked up once per process and app."""
        cache_key = (self.base_url, self.app_id)
        with _locations_lock:
            cached = _locations.get(cache_key)
        if cached:
            return cached
        origin = check_origin(self.base_url)
        data = _call(
            "GET", origin, f"{self._app_path}/location", route="GET /app/{app}/location", retry=True
        )
        hostname = _expect(data, "hostname")["hostname"].rstrip("/")
        hostname = check_origin(hostname)
        with _locations_lock:
            _locations[cache_key] = hostname
        return hostname

    def check_location(self) -> str:
        """Ask where this app lives now, past the cache, without a retry (readiness checks)."""
        data = _call(
            "GET",
            check_origin(self.base_url),
            f"{self._app_path}/location",
            route="GET /app/{app}/location",
        )
        return check_origin(_expect(data, "hostname")["hostname"].rstrip("/"))

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
            user_id=tokens["user_id"],
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
    def __init__(self, hostname: str, refresh_token: str, access_token: str | None = None) -> None:
        self.hostname = hostname
        self._refresh_token = refresh_token
        self._access_token = access_token

    def __repr__(self) -> str:
        return f"UserSession({self.hostname})"

    def _keys_call(self, method: str, path: str, route: str, **kwargs: Any) -> Any:
        return _call(
            method,
            check_origin(self.hostname),
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
            check_origin(self.hostname),
            f"{_CLIENT_ROOT}/auth/profile",
            route="GET /auth/profile",
            token=self._access_token,
            retry=True,
        )
        profile = _expect(data, "user_id")
        user_data = profile.get("data") if isinstance(profile.get("data"), dict) else {}
        identities = tuple(
            ProviderIdentity(
                id=str(item.get("id", "")), provider_type=str(item.get("provider_type", ""))
            )
            for item in profile.get("identities") or []
            if isinstance(item, dict)
        )
        return Profile(
            user_id=profile["user_id"],
            type=str(profile.get("type", "normal")),
            email=user_data.get("email") if isinstance(user_data.get("email"), str) else None,
            name=user_data.get("name") if isinstance(user_data.get("name"), str) else None,
            identities=identities,
        )

    def refresh(self) -> str:
        data = self._keys_call("POST", "/auth/session", "POST /auth/session")
        self._access_token = _expect(data, "access_token")["access_token"]
        return self._access_token

    def logout(self) -> None:
        """Revoke the refresh token upstream (access tokens already issued live on)."""
        self._keys_call("DELETE", "/auth/session", "DELETE /auth/session", retry=True)

    def list_api_keys(self) -> list[ApiKey]:
        data = self._keys_call("GET", "/auth/api_keys", "GET /auth/api_keys", retry=True)
        if not isinstance(data, list):
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
