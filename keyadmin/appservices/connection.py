"""The App Services user a staff member is connected to, kept in their server-side session.

The tokens are encrypted with KEYADMIN_TOKEN_KEY before they enter the session row, so a database
dump or a leaked SECRET_KEY alone does not yield a refresh token (a 60-day credential that can
manage the user's keys). Nothing but this module reads or writes them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.http import HttpRequest
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_variables

from keyadmin import appservices

logger = logging.getLogger("keyadmin.connection")

SESSION_KEY = "appservices"

# Sessions that App Services refuses key management to (403 upstream): say so before trying.
PROVIDERS_WITHOUT_KEYS = frozenset({"anon-user", "api-key"})


@dataclass(frozen=True)
class Connection:
    app_id: str
    hostname: str
    user_id: str
    provider: str
    email: str | None
    label: str
    can_manage_keys: bool
    _refresh_token: str = field(repr=False)

    def __repr__(self) -> str:
        return f"Connection({self.user_id} via {self.provider} at {self.hostname})"

    def client(self) -> appservices.UserSession:
        return appservices.UserSession(self.hostname, self._refresh_token)


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


@sensitive_variables()
def connect(request: HttpRequest, provider: str, credentials: dict[str, str]) -> Connection:
    """Sign in to App Services and remember the session; raises `AppServicesError`.

    A session this one replaces is revoked upstream once the new one works: its refresh token
    must not stay valid (for up to 60 days) after keyadmin has forgotten it. A failed sign-in
    leaves the current session as it was.
    """
    previous = get_connection(request)
    app = appservices.AppServices()
    tokens = app.login(provider, credentials)
    profile = appservices.UserSession(
        tokens.hostname, tokens.refresh_token, tokens.access_token
    ).profile()
    can_manage = provider not in PROVIDERS_WITHOUT_KEYS and profile.type == "normal"
    request.session.cycle_key()  # a new privilege level gets a new session id
    request.session[SESSION_KEY] = {
        "app_id": app.app_id,
        "hostname": tokens.hostname,
        "user_id": tokens.user_id,
        "provider": provider,
        "email": profile.email,
        "label": _label(provider, profile),
        "can_manage_keys": can_manage,
        # Only the refresh token is kept: every key call uses it, and an access token would
        # only widen what a stolen session row could do.
        "refresh": _fernet().encrypt(tokens.refresh_token.encode()).decode(),
    }
    if previous is not None:
        _revoke(previous.hostname, previous._refresh_token)
    return get_connection(request)


@sensitive_variables()
def get_connection(request: HttpRequest) -> Connection | None:
    stored = request.session.get(SESSION_KEY)
    if not isinstance(stored, dict):
        return None
    try:
        refresh = _fernet().decrypt(stored["refresh"].encode()).decode()
        return Connection(
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
        # Written under a key no longer configured, or damaged: sign in again.
        forget(request)
        return None


def forget(request: HttpRequest) -> None:
    """Drop the App Services session without telling App Services (it has already ended)."""
    request.session.pop(SESSION_KEY, None)


def disconnect(request: HttpRequest) -> None:
    """Revoke the refresh token upstream, then forget it. Sign-out goes on if App Services fails."""
    connection = get_connection(request)
    forget(request)
    if connection is not None:
        _revoke(connection.hostname, connection._refresh_token)


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
    except (KeyError, TypeError, AttributeError, InvalidToken):
        logger.warning("a stored App Services token cannot be read; it is dropped unrevoked")
        return False
    return _revoke(hostname, refresh)


@sensitive_variables()
def _revoke(hostname: str, refresh_token: str) -> bool:
    try:
        appservices.UserSession(hostname, refresh_token).logout()
    except appservices.AppServicesError as exc:
        logger.warning("App Services sign-out failed (%s); the token is forgotten here", exc.status)
        return False
    return True
