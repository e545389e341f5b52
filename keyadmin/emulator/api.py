"""The App Services client API routes: location, login, registration, sessions, keys.

Statuses, error codes and texts follow docs/local-appservices-server.md, which also lists the
local choices made where the real service's answer is not known.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from keyadmin.emulator.config import EmulatorConfig
from keyadmin.emulator.customtoken import CustomTokenRejected, CustomTokenVerifier
from keyadmin.emulator.store import (
    MAX_KEYS_PER_USER,
    EmailTaken,
    KeyLimitReached,
    KeyNameTaken,
    Session,
    Store,
    User,
    object_id,
)
from keyadmin.emulator.tokens import (
    Claims,
    SignatureInvalid,
    TokenExpired,
    TokenInvalid,
    Tokens,
    WrongTokenType,
)
from keyadmin.emulator.wire import ApiError, Request, Response

logger = logging.getLogger(__name__)

APP = r"/api/client/v2\.0/app/(?P<app_id>[^/]+)"
AUTH = r"/api/client/v2\.0/auth"
KEY = AUTH + r"/api_keys/(?P<key_id>[^/]*)"


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    name: str


def _route(method: str, pattern: str, name: str) -> Route:
    return Route(method, re.compile(pattern + r"\Z"), name)


ROUTES = (
    _route("GET", APP + "/location", "location"),
    _route("POST", APP + "/auth/providers/local-userpass/register", "register"),
    _route("POST", APP + "/auth/providers/(?P<provider>[^/]+)/login", "login"),
    _route("POST", AUTH + "/session", "session_refresh"),
    _route("DELETE", AUTH + "/session", "session_logout"),
    _route("GET", AUTH + "/profile", "profile"),
    _route("DELETE", AUTH + "/delete", "user_delete"),
    _route("GET", AUTH + "/api_keys", "keys_list"),
    _route("POST", AUTH + "/api_keys", "keys_create"),
    _route("GET", KEY, "keys_get"),
    _route("PUT", KEY + "/enable", "keys_enable"),
    _route("PUT", KEY + "/disable", "keys_disable"),
    _route("DELETE", KEY, "keys_delete"),
)
ROUTE_NAMES = (*(route.name for route in ROUTES), "other")

KEY_NAME = re.compile(r"[A-Za-z0-9_-]+")
MAX_KEY_NAME = 64
KEY_ID = re.compile(r"[0-9a-fA-F]{24}")
NO_DEVICE = "000000000000000000000000"


def match(method: str, path: str) -> tuple[str, dict[str, str]]:
    """The route name for a request and its path parameters; "other" when nothing matches."""
    for route in ROUTES:
        if route.method == method:
            found = route.pattern.match(path)
            if found:
                return route.name, {
                    name: unquote(value) for name, value in found.groupdict().items()
                }
    return "other", {}


# The errors several routes share, worded as App Services words them; raise ApiError(*ERROR).
# A None error_code is left out of the body, as the real service leaves it out there.
NOT_AUTHENTICATED = (401, "InvalidSession", "must authenticate first")
NOT_BEARER = (401, None, "expected Authorization header with JWT (Bearer schema)")
BAD_TOKEN = (401, "InvalidSession", "unauthorized")
FOREIGN_SIGNATURE = (401, None, "signature is invalid")
NO_REFRESH_SESSION = (401, "InvalidSession", "invalid session: failed to find refresh token")
NOT_A_REFRESH_TOKEN = (401, "InvalidSession", "invalid refresh token: incorrect token type")
NOT_AN_ACCESS_TOKEN = (401, "InvalidSession", "invalid access token: incorrect token type")
ACCESS_EXPIRED = (401, "InvalidSession", "invalid session: access token expired")
KEY_NOT_FOUND = (404, "APIKeyNotFound", "API key not found")
# Since May 2024 the service words every refused login "unauthorized"; the code tells them apart.
WRONG_EMAIL_OR_PASSWORD = (401, "InvalidPassword", "unauthorized")
PROVIDER_NOT_ENABLED = (401, "InvalidSession", "unauthorized")
LOGIN_REFUSED = (401, "AuthError", "unauthorized")
NAME_REQUIRED = (400, None, "'name' is a required string")


class ClientApi:
    def __init__(self, config: EmulatorConfig, store: Store) -> None:
        self.config = config
        self.store = store
        self.tokens = Tokens(
            key=store.setting("signing_key", lambda: secrets.token_urlsafe(48)),
            domain_id=store.setting("domain_id", object_id),
            access_ttl=config.access_ttl,
            refresh_ttl=config.refresh_ttl,
        )
        self.custom_tokens = CustomTokenVerifier(
            config.custom_token_secret,
            config.custom_token_jwks_url,
            config.custom_token_audience or config.app_id,
            config.custom_token_metadata,
        )
        self._provider_ids: dict[str, str] = {}
        self._providers: dict[str, Callable[[dict[str, Any]], tuple[str, str, str]]] = {
            "local-userpass": self._login_email_password,
            "anon-user": self._login_anonymous,
            "api-key": self._login_api_key,
            "custom-token": self._login_custom_token,
        }

    def handle(self, route: str, params: dict[str, str], request: Request) -> Response:
        """The route's answer; an ApiError becomes App Services' JSON error body."""
        try:
            if route == "other":
                raise ApiError(404, "NotFound", f"no route for {request.method} {request.path}")
            return getattr(self, route)(request, **params)
        except ApiError as error:
            return self.error_response(error, request)

    def error_response(self, error: ApiError, request: Request) -> Response:
        link = f"{request.base_url}/groups/local/apps/{self.config.app_id}/logs?co_id={object_id()}"
        body = {"error": error.error, "error_code": error.error_code, "link": link}
        if error.error_code is None:
            del body["error_code"]
        return Response.json(error.status, body)

    # --- app-scoped routes ---

    def location(self, request: Request, app_id: str) -> Response:
        self._check_app(app_id)
        hostname = request.base_url
        return Response.json(
            200,
            {
                "deployment_model": "GLOBAL",
                "location": "US-VA",
                "hostname": hostname,
                "ws_hostname": "ws" + hostname.removeprefix("http"),
            },
        )

    def register(self, request: Request, app_id: str) -> Response:
        # Authorization is ignored: realm-web sends the current user's token here if any.
        self._check_app(app_id)
        body = request.json_object()
        email, password = body.get("email"), body.get("password")
        if not isinstance(email, str) or not email.strip():
            raise ApiError(400, "BadRequest", "email invalid")
        if not isinstance(password, str) or not 6 <= len(password) <= 128:
            raise ApiError(400, "BadRequest", "password must be between 6 and 128 characters")
        try:
            self.store.create_email_user(email, password)
        except EmailTaken:
            raise ApiError(409, "AccountNameInUse", "name already in use") from None
        return Response.empty(201)

    def login(self, request: Request, app_id: str, provider: str) -> Response:
        self._check_app(app_id)
        if request.first("link") == "true":
            raise ApiError(400, "BadRequest", "linking identities is not supported locally")
        body = request.json_object()
        authenticate = self._providers.get(provider)
        if authenticate is None or (
            provider == "custom-token" and not self.custom_tokens.configured
        ):
            # oauth2-google/-apple/-facebook, custom-function, ...: the service answers a
            # provider the app has not enabled as an invalid session, not as a missing route.
            raise ApiError(*PROVIDER_NOT_ENABLED)
        user_id, provider_type, identity_id = authenticate(body)
        session = self.store.create_session(
            user_id, provider_type, identity_id, _device_id(body), self.tokens.refresh_ttl
        )
        return Response.json(
            200,
            {
                "access_token": self.tokens.access_token(session),
                "refresh_token": self.tokens.refresh_token(session, self._provider_id(provider)),
                "user_id": user_id,
                "device_id": session.device_id,
            },
        )

    def _login_email_password(self, body: dict[str, Any]) -> tuple[str, str, str]:
        username, password = body.get("username"), body.get("password")
        user = None
        if isinstance(username, str) and isinstance(password, str):
            user = self.store.check_email_password(username, password)
        if user is None:
            # Wrong password, unknown or deleted user alike, so answers do not tell which
            # emails exist.
            raise ApiError(*WRONG_EMAIL_OR_PASSWORD)
        identity = self.store.identity_of(user.id, "local-userpass") or user.id
        return user.id, "local-userpass", identity

    def _login_anonymous(self, body: dict[str, Any]) -> tuple[str, str, str]:
        user_id, identity = self.store.create_anonymous_user()
        return user_id, "anon-user", identity

    def _login_api_key(self, body: dict[str, Any]) -> tuple[str, str, str]:
        secret = body.get("key")
        key = self.store.key_by_secret(secret) if isinstance(secret, str) else None
        if key is None or key.disabled:
            raise ApiError(*LOGIN_REFUSED)
        self.store.add_identity(key.user_id, "api-key", key.id)
        return key.user_id, "api-key", key.id

    def _login_custom_token(self, body: dict[str, Any]) -> tuple[str, str, str]:
        token = body.get("token")
        try:
            if not isinstance(token, str):
                raise CustomTokenRejected("no token given")
            verified = self.custom_tokens.verify(token)
        except CustomTokenRejected as exc:
            # The reason goes to the server's own log (with --verbose), never to the client.
            logger.info("custom-token login refused: %s", exc)
            raise ApiError(*LOGIN_REFUSED) from None
        user_id = self.store.user_for_identity("custom-token", verified.subject)
        self.store.set_profile_data(user_id, verified.profile_data)
        return user_id, "custom-token", verified.subject

    # --- sessions and the user ---

    def session_refresh(self, request: Request) -> Response:
        session = self._refresh_session(request)
        return Response.json(201, {"access_token": self.tokens.access_token(session)})

    def session_logout(self, request: Request) -> Response:
        session = self._refresh_session(request)
        self.store.delete_session(session.id)
        return Response.empty(204)

    def profile(self, request: Request) -> Response:
        claims = self._access_claims(request)
        user = self.store.user(claims.user_id)
        if user is None:
            raise ApiError(*NO_REFRESH_SESSION)
        identities = [
            {
                "id": identity.id,
                "provider_type": identity.provider_type,
                "provider_id": self._provider_id(identity.provider_type),
            }
            for identity in self.store.identities(user.id)
        ]
        return Response.json(
            200,
            {
                "user_id": user.id,
                "domain_id": self.tokens.domain_id,
                "identities": identities,
                "data": self._profile_data(user),
                "type": "normal",
            },
        )

    def _profile_data(self, user: User) -> dict[str, Any]:
        stored = self.store.profile_data(user.id)
        if stored is not None:
            return stored
        return {"email": user.email} if user.email else {}

    def user_delete(self, request: Request) -> Response:
        claims = self._access_claims(request)
        if self.store.user(claims.user_id) is None:
            raise ApiError(*NO_REFRESH_SESSION)
        self.store.delete_user(claims.user_id)
        return Response.empty(204)

    # --- user API keys ---

    def keys_list(self, request: Request) -> Response:
        session = self._key_manager(request)
        return Response.json(200, [key.public() for key in self.store.keys(session.user_id)])

    def keys_create(self, request: Request) -> Response:
        session = self._key_manager(request)
        name = request.json_object().get("name")
        _check_key_name(name)
        try:
            key, secret = self.store.create_key(session.user_id, name)
        except KeyNameTaken:
            raise ApiError(409, "APIKeyAlreadyExists", "API key with name already exists") from None
        except KeyLimitReached:
            raise ApiError(
                400,
                "APIKeyLimitExceeded",
                f"maximum number of API keys ({MAX_KEYS_PER_USER}) reached",
            ) from None
        return Response.json(
            201, {"_id": key.id, "key": secret, "name": key.name, "disabled": key.disabled}
        )

    def keys_get(self, request: Request, key_id: str) -> Response:
        session = self._key_manager(request)
        key = self.store.key(session.user_id, _key_id(key_id))
        if key is None:
            raise ApiError(*KEY_NOT_FOUND)
        return Response.json(200, key.public())

    def keys_enable(self, request: Request, key_id: str) -> Response:
        return self._set_disabled(request, key_id, disabled=False)

    def keys_disable(self, request: Request, key_id: str) -> Response:
        return self._set_disabled(request, key_id, disabled=True)

    def keys_delete(self, request: Request, key_id: str) -> Response:
        session = self._key_manager(request)
        if not self.store.delete_key(session.user_id, _key_id(key_id)):
            raise ApiError(*KEY_NOT_FOUND)
        return Response.empty(204)

    def _set_disabled(self, request: Request, key_id: str, *, disabled: bool) -> Response:
        session = self._key_manager(request)
        if not self.store.set_key_disabled(session.user_id, _key_id(key_id), disabled):
            raise ApiError(*KEY_NOT_FOUND)
        return Response.empty(204)

    # --- checks ---

    def _check_app(self, app_id: str) -> None:
        if app_id != self.config.app_id:
            raise ApiError(404, "AppNotFound", f"cannot find app using Client App ID '{app_id}'")

    def _provider_id(self, provider_type: str) -> str:
        # Plain dict use is thread-safe; a race only reads the same stored id twice.
        if provider_type not in self._provider_ids:
            self._provider_ids[provider_type] = self.store.setting(
                f"provider_id:{provider_type}", object_id
            )
        return self._provider_ids[provider_type]

    def _access_claims(self, request: Request) -> Claims:
        try:
            return self.tokens.verify(_bearer(request), "access")
        except WrongTokenType:
            raise ApiError(*NOT_AN_ACCESS_TOKEN) from None
        except TokenExpired:
            raise ApiError(*ACCESS_EXPIRED) from None
        except TokenInvalid:
            raise ApiError(*BAD_TOKEN) from None

    def _refresh_session(self, request: Request) -> Session:
        try:
            claims = self.tokens.verify(_bearer(request), "refresh")
        except WrongTokenType:
            raise ApiError(*NOT_A_REFRESH_TOKEN) from None
        except TokenExpired:
            raise ApiError(*NO_REFRESH_SESSION) from None
        except SignatureInvalid:
            raise ApiError(*FOREIGN_SIGNATURE) from None
        except TokenInvalid:
            raise ApiError(*BAD_TOKEN) from None
        session = self.store.session(claims.session_id)
        if session is None or session.user_id != claims.user_id:
            raise ApiError(*NO_REFRESH_SESSION)
        return session

    def _key_manager(self, request: Request) -> Session:
        """The session behind a key call: a normal user's, not opened with an API key."""
        session = self._refresh_session(request)
        user = self.store.user(session.user_id)
        if user is None:
            raise ApiError(*NO_REFRESH_SESSION)
        if user.anonymous:
            raise ApiError(403, "Forbidden", "anonymous users cannot manage user API keys")
        if session.provider_type == "api-key":
            raise ApiError(
                403, "Forbidden", "a session opened with an API key cannot manage user API keys"
            )
        return session


def _bearer(request: Request) -> str:
    header = request.headers.get("Authorization")
    if header is None:
        raise ApiError(*NOT_AUTHENTICATED)
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(*NOT_BEARER)
    return token.strip()


def _check_key_name(name: Any) -> None:
    if not isinstance(name, str) or not name:
        raise ApiError(*NAME_REQUIRED)
    if not KEY_NAME.fullmatch(name):
        raise ApiError(
            400,
            "InvalidParameter",
            "can only contain ASCII letters, numbers, underscores, and hyphens",
        )
    if len(name) > MAX_KEY_NAME:
        raise ApiError(
            400, "InvalidParameter", f"name must be at most {MAX_KEY_NAME} characters long"
        )


def _key_id(raw: str) -> str:
    # Any malformed id is simply a key that does not exist.
    if not KEY_ID.fullmatch(raw):
        raise ApiError(*KEY_NOT_FOUND)
    return raw.lower()


def _device_id(body: dict[str, Any]) -> str:
    """The device id the client sent back (realm-web sends it as EJSON `{"$oid": ...}`)."""
    options = body.get("options")
    device = options.get("device") if isinstance(options, dict) else None
    value = device.get("deviceId") if isinstance(device, dict) else None
    if isinstance(value, dict):
        value = value.get("$oid")
    if isinstance(value, str) and KEY_ID.fullmatch(value) and value != NO_DEVICE:
        return value.lower()
    return object_id()
