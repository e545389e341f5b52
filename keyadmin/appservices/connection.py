"""The App Services user a staff member is connected to, kept in their server-side session.

The tokens are encrypted with KEYADMIN_TOKEN_KEY before they enter the session row, so a database
dump or a leaked SECRET_KEY alone does not yield a refresh token (a 60-day credential that can
manage the user's keys). Nothing but this module reads or writes them.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.http import HttpRequest
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_variables

from keyadmin import appservices
from keyadmin.appservices.apps import AppConfig, all_apps, app_for_id, default_app

logger = logging.getLogger("keyadmin.connection")

SESSION_KEY = "appservices"

# Sessions that App Services refuses key management to (403 upstream): say so before trying.
PROVIDERS_WITHOUT_KEYS = frozenset({"anon-user", "api-key"})


@dataclass(frozen=True)
class Acting:
    """A staff member acting for a customer: who, why, until when (epoch seconds), by whom."""

    customer_id: str
    ticket: str
    ends_at: int
    staff_subject: str
    new_user: bool = False  # the sign-in created this App Services user (a mistyped id?)
    # Random, one per start: forms name it (keyadmin.keys.guards.binding_claims), so a page from
    # an earlier session for the same customer, under another ticket, is refused in this one.
    start_id: str = ""

    def as_dict(self) -> dict:
        return {
            "customer_id": self.customer_id,
            "ticket": self.ticket,
            "ends_at": self.ends_at,
            "staff_subject": self.staff_subject,
            "new_user": self.new_user,
            "start_id": self.start_id,
        }


@dataclass(frozen=True)
class Connection:
    """`app_key` names the AppConfig (keyadmin.appservices.apps) this session is in; `acting` is
    set when a staff member acts for a customer (never for their own or a typed-in user)."""

    app_id: str
    hostname: str
    user_id: str
    provider: str
    email: str | None
    label: str
    can_manage_keys: bool
    _refresh_token: str = field(repr=False)
    app_key: str = ""
    acting: Acting | None = None
    # Only for a user this very sign-in created, on an app that lets staff delete it: the
    # login's access token, which `DELETE /auth/delete` needs (keep_access_token says why).
    _access_token: str | None = field(default=None, repr=False)
    access_obtained_at: int = 0

    @property
    def may_delete_user(self) -> bool:
        """Whether this is still the connection whose sign-in created its user, on an app that
        lets staff delete such a user (keyadmin.keys.connect checks the audit trail too)."""
        return bool(
            self.acting is not None
            and self.acting.new_user
            and self._access_token
            and self.app.act_for_enabled
            and self.app.delete_new_users
            and time.time() - self.access_obtained_at < DELETE_NEW_USER_SECONDS
        )

    def __repr__(self) -> str:
        return f"Connection({self.user_id} via {self.provider} at {self.hostname})"

    @property
    def app(self) -> AppConfig:
        return _app_of(self.app_key, self.app_id)

    def client(self) -> appservices.UserSession:
        return appservices.UserSession(
            self.hostname, self._refresh_token, allowed_hosts=self.app.allowed_hosts
        )


def acting_about(connection: Connection) -> dict:
    """The audit fields of an act-for connection no longer (or not yet) in the session."""
    acting = connection.acting
    return {
        "appservices_user_id": connection.user_id,
        "app_id": connection.app_id,
        "acting_for": acting.customer_id if acting else "",
        "ticket": acting.ticket if acting else "",
        "acting_until": acting.ends_at if acting else None,
    }


def _app_of(app_key: str, app_id: str) -> AppConfig:
    for candidate in all_apps():
        if candidate.key == app_key and candidate.app_id == app_id:
            return candidate
    if not app_key:  # stored before keyadmin knew several apps
        found = app_for_id(app_id)
        if found is not None:
            return found
    raise KeyError(app_key)  # the app is no longer configured: the connection is unusable


def _fernet() -> MultiFernet:
    """Encrypts with KEYADMIN_TOKEN_KEY; decrypts with it or any of KEYADMIN_TOKEN_KEY_PREVIOUS."""
    keys = [settings.KEYADMIN_TOKEN_KEY, *settings.KEYADMIN_TOKEN_KEY_PREVIOUS]
    return MultiFernet([Fernet(key) for key in keys])


def _label(provider: str, profile: appservices.Profile) -> str:
    if provider == "anon-user":
        return _("Anonymous user")
    if provider == "api-key":
        return _("%(who)s (signed in with an API key)") % {
            "who": profile.email or profile.name or profile.user_id
        }
    return profile.email or profile.name or profile.user_id


def app_of_session(request: HttpRequest) -> AppConfig | None:
    """The app the stored connection is in (None: no connection, or an app no longer listed)."""
    stored = request.session.get(SESSION_KEY)
    if not isinstance(stored, dict):
        return None
    try:
        return _app_of(str(stored.get("app_key", "")), str(stored.get("app_id", "")))
    except KeyError:
        return None


@sensitive_variables()
def connect(
    request: HttpRequest,
    provider: str,
    credentials: dict[str, str],
    app: AppConfig | None = None,
    *,
    keep_session_key: bool = False,
) -> Connection:
    """Sign in to App Services and remember the session; raises `AppServicesError`.

    A session this one replaces is revoked upstream once the new one works: its refresh token
    must not stay valid (for up to 60 days) after keyadmin has forgotten it. A failed sign-in
    leaves the current session as it was. The keyadmin session gets a new key, unless
    `keep_session_key` (only `keyadmin.sso.session.finish_sign_in` asks, and says why).
    """
    app = app or default_app()
    client = appservices.AppServices(app)
    tokens = client.login(provider, credentials)
    profile = appservices.UserSession(
        tokens.hostname, tokens.refresh_token, tokens.access_token, app.allowed_hosts
    ).profile()
    can_manage = provider not in PROVIDERS_WITHOUT_KEYS and profile.type == "normal"
    _remember(
        request,
        app,
        tokens,
        provider,
        profile.email,
        _label(provider, profile),
        can_manage,
        keep_session_key=keep_session_key,
    )
    return get_connection(request)


@sensitive_variables()
def connect_acting(request: HttpRequest, app: AppConfig, token: str, acting: Acting) -> Connection:
    """Sign in as a customer with a Custom JWT: exactly one upstream request (the login).

    The profile is not fetched: the login's answer names the user, and the customer id is the
    label. `acting.new_user` is worked out here from the user id the answer carries.
    """
    asked_at = time.time()
    tokens = appservices.AppServices(app).login("custom-token", {"token": token})
    acting = replace_new_user(acting, tokens.user_id, asked_at, time.time())
    _remember(
        request,
        app,
        tokens,
        "custom-token",
        None,
        acting.customer_id,
        True,
        acting=acting,
        keep_access_token=acting.new_user and app.delete_new_users,
    )
    return get_connection(request)


# How long after the sign-in staff may still delete the empty user it made. A mistyped id shows
# on the first page; later, the customer the id was meant for may have signed up under it
# since (their first sign-in finds the user keyadmin made), so deleting it would delete them.
DELETE_NEW_USER_SECONDS = 10 * 60

# App Services' access tokens live 30 minutes; one older than this is refreshed before use.
ACCESS_TOKEN_SECONDS = 25 * 60


@sensitive_variables()
def delete_new_user(request: HttpRequest, connection: Connection) -> None:
    """Delete the empty user `connection`'s sign-in created, then forget the connection: its
    tokens died with the user, so there is nothing left to revoke.

    One upstream request while the kept access token is fresh (ACCESS_TOKEN_SECONDS), two (a
    refresh first) after that. Raises `AppServicesError`; the connection stays as it was then.
    """
    fresh = time.time() - connection.access_obtained_at < ACCESS_TOKEN_SECONDS
    appservices.UserSession(
        connection.hostname,
        connection._refresh_token,
        connection._access_token if fresh else None,
        connection.app.allowed_hosts,
    ).delete_user()
    forget(request)


# How far App Services' clock may be from ours. Small on purpose: a user made this much before
# the sign-in was sent is a customer who signed up just before, and must not be offered for
# deletion as the empty user of a mistyped id.
NEW_USER_SECONDS = 2


def replace_new_user(acting: Acting, user_id: str, asked_at: float, answered_at: float) -> Acting:
    """`acting` with `new_user` set when the user id (an ObjectId, whose first 8 hex digits are
    its creation time, in whole seconds) was made while the sign-in was on its way, between
    `asked_at` and `answered_at` (NEW_USER_SECONDS either side): by this very sign-in."""
    if not re.fullmatch(appservices.KEY_ID_PATTERN, user_id):  # ObjectIds, like key ids
        return acting
    created = int(user_id[:8], 16)
    new = int(asked_at) - NEW_USER_SECONDS <= created <= answered_at + NEW_USER_SECONDS
    return Acting(**{**acting.as_dict(), "new_user": new})


@sensitive_variables()
def _remember(
    request: HttpRequest,
    app: AppConfig,
    tokens: appservices.Tokens,
    provider: str,
    email: str | None,
    label: str,
    can_manage: bool,
    acting: Acting | None = None,
    keep_access_token: bool = False,
    keep_session_key: bool = False,
) -> None:
    previous = get_connection(request)
    if not keep_session_key:
        request.session.cycle_key()  # a new privilege level gets a new session id
    request.session[SESSION_KEY] = {
        "app_key": app.key,
        "app_id": app.app_id,
        "hostname": tokens.hostname,
        "user_id": tokens.user_id,
        "provider": provider,
        "email": email,
        "label": label,
        "can_manage_keys": can_manage,
        "acting": acting.as_dict() if acting is not None else None,
        # Only the refresh token is kept: every key call uses it, and an access token would
        # only widen what a stolen session row could do (one exception, below).
        "refresh": _fernet().encrypt(tokens.refresh_token.encode()).decode(),
    }
    if keep_access_token:
        # Kept for one case only, a user this sign-in just created, so that deleting it costs
        # one request rather than a refresh and the delete. Encrypted like the refresh token,
        # which already grants more (60 days against 30 minutes), and gone with the connection.
        stored = request.session[SESSION_KEY]
        stored["access"] = _fernet().encrypt(tokens.access_token.encode()).decode()
        stored["access_at"] = int(time.time())
    if previous is not None:
        _revoke(previous.hostname, previous._refresh_token, previous.app.allowed_hosts)


@sensitive_variables()
def get_connection(request: HttpRequest) -> Connection | None:
    stored = request.session.get(SESSION_KEY)
    if not isinstance(stored, dict):
        return None
    try:
        refresh = _fernet().decrypt(stored["refresh"].encode()).decode()
        access = stored.get("access")
        access = _fernet().decrypt(access.encode()).decode() if isinstance(access, str) else None
        app = _app_of(str(stored.get("app_key", "")), stored["app_id"])
        acting = stored.get("acting")
        return Connection(
            _access_token=access,
            access_obtained_at=int(stored.get("access_at") or 0),
            app_key=app.key,
            acting=Acting(**acting) if isinstance(acting, dict) else None,
            app_id=stored["app_id"],
            hostname=stored["hostname"],
            user_id=stored["user_id"],
            provider=stored["provider"],
            email=stored.get("email"),
            label=stored["label"],
            can_manage_keys=bool(stored["can_manage_keys"]),
            _refresh_token=refresh,
        )
    except (KeyError, TypeError, InvalidToken):
        # Written under a key no longer configured, for an app no longer listed, or damaged:
        # sign in again.
        forget(request)
        return None


@sensitive_variables()
def end_orphaned_acting(request: HttpRequest) -> dict | None:
    """End acting for a customer on an app no longer configured: revoke the refresh token at the
    host it came from, forget the connection, and return its audit fields (`acting_about`'s);
    None when the session is not acting on such an app.

    The host is the stored one: it passed the app's allowlist when the session was made, and it
    issued the token, so revoking there shows it nothing new.
    """
    stored = request.session.get(SESSION_KEY)
    acting = stored.get("acting") if isinstance(stored, dict) else None
    if not isinstance(acting, dict) or app_of_session(request) is not None:
        return None
    forget(request)
    try:
        refresh = _fernet().decrypt(stored["refresh"].encode()).decode()
        hostname = str(stored["hostname"])
    except (KeyError, TypeError, AttributeError, InvalidToken):
        logger.warning("a stored App Services token cannot be read; it is dropped unrevoked")
    else:
        _revoke(hostname, refresh, (urlsplit(hostname).hostname or "",))
    return stored_about(stored)


def stored_about(stored: dict) -> dict:
    """The audit fields of a stored connection (`acting_about`'s): who, which app, and while
    acting for whom, why and until when. Only these are read, never the encrypted tokens."""
    acting = stored.get("acting") if isinstance(stored.get("acting"), dict) else {}
    return {
        "appservices_user_id": str(stored.get("user_id", ""))[:64],
        "app_id": str(stored.get("app_id", ""))[:64],
        "acting_for": str(acting.get("customer_id", ""))[:255],
        "ticket": str(acting.get("ticket", ""))[:255],
        "acting_until": acting.get("ends_at"),
    }


def forget(request: HttpRequest) -> None:
    """Drop the App Services session without telling App Services (it has already ended)."""
    request.session.pop(SESSION_KEY, None)


def disconnect(request: HttpRequest) -> None:
    """Revoke the refresh token upstream, then forget it. Sign-out goes on if App Services fails."""
    connection = get_connection(request)
    forget(request)
    if connection is not None:
        _revoke(connection.hostname, connection._refresh_token, connection.app.allowed_hosts)


@sensitive_variables()
def revoke_stored(session_data: dict) -> bool:
    """Revoke the refresh token a stored session holds (a session nobody is using any more).

    False when there was nothing to revoke, the token is under a key no longer configured, or
    App Services did not confirm; the caller drops the token either way.
    """
    stored = session_data.get(SESSION_KEY)
    if not isinstance(stored, dict):
        return False
    try:
        refresh = _fernet().decrypt(stored["refresh"].encode()).decode()
        hostname = stored["hostname"]
        app = _app_of(str(stored.get("app_key", "")), stored["app_id"])
    except (KeyError, TypeError, AttributeError, InvalidToken):
        logger.warning("a stored App Services token cannot be read; it is dropped unrevoked")
        return False
    return _revoke(hostname, refresh, app.allowed_hosts)


@sensitive_variables()
def _revoke(hostname: str, refresh_token: str, allowed_hosts: tuple[str, ...]) -> bool:
    try:
        appservices.UserSession(hostname, refresh_token, allowed_hosts=allowed_hosts).logout()
    except appservices.AppServicesError as exc:
        logger.warning("App Services sign-out failed (%s); the token is forgotten here", exc.status)
        return False
    return True
