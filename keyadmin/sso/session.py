"""A staff member's keyadmin session: opened, ended, and where the browser goes afterwards.

Sessions are opened by a verified identity (the middleware for `remote-user` and `assertion`,
the OIDC callback, or the development sign-in below, refused unless DEBUG is on), and ended with
the App Services session they hold revoked upstream. The guards views use live in `access`.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.conf import settings
from django.contrib.auth import login, logout
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.utils.translation import gettext as _

from keyadmin import audit
from keyadmin.appservices import connection
from keyadmin.sso import bridge, oidc
from keyadmin.sso.backends import STAFF_BACKEND
from keyadmin.sso.mode import DEV_ISSUER, dev_sign_in_enabled
from keyadmin.sso.roles import ROLES
from keyadmin.sso.sources import StaffIdentity
from keyadmin.sso.staff import provision, staff_of

DEV_USERNAME_PREFIX = "dev:"


def sign_in_dev(request: HttpRequest, name: str, roles: Iterable[str] | None = None) -> None:
    """Sign in as `name` with the chosen roles (all of them by default); DEBUG only."""
    if not dev_sign_in_enabled():
        raise PermissionDenied(_("The development sign-in is off."))
    name = " ".join(name.split())[:100]
    chosen = ROLES if roles is None else tuple(role for role in ROLES if role in set(roles))
    user = provision(
        StaffIdentity(
            issuer=DEV_ISSUER,
            subject=f"{DEV_USERNAME_PREFIX}{name}",
            name=name,
            groups=chosen,
        )
    )
    if user is None:
        raise PermissionDenied(_("This development account is disabled."))
    if request.user.is_authenticated and request.user != user:
        end_session(request, "another staff member signed in")
    login(request, user, backend=STAFF_BACKEND)
    after_sign_in(request, user)


def after_sign_in(request: HttpRequest, user) -> None:
    """A new staff session exists: audit it, then connect App Services if the bridge is on."""
    audit.record(request, "signin", audit.OK, detail=f"KEYADMIN_SSO={settings.KEYADMIN_SSO}")
    staff = staff_of(user)
    if bridge.enabled() and staff is not None:
        bridge.sign_in(request, staff.subject, name=staff.display_name, email=staff.email)


def _drop_appservices(request: HttpRequest) -> None:
    if connection.SESSION_KEY in request.session:
        connection.disconnect(request)  # revokes the refresh token upstream, best effort
        audit.record(request, "appservices-signout", audit.OK)


def sign_out(request: HttpRequest) -> None:
    """End the keyadmin session: App Services token revoked, session flushed, event audited.

    Call `signout_url` afterwards for where to send the browser (the SSO's own sign-out): it was
    worked out here, before the session that it may need was flushed.
    """
    request.keyadmin_signout_url = signout_url(request)
    if request.user.is_authenticated:
        _drop_appservices(request)
        audit.record(request, "signout", audit.OK)
    logout(request)  # flushes the session, App Services tokens included


def end_session(request: HttpRequest, reason: str) -> None:
    """End a session the SSO no longer vouches for (subject changed or gone, group removed)."""
    if request.user.is_authenticated:
        _drop_appservices(request)
        audit.record(request, "signout", audit.OK, detail=reason)
        logout(request)


def signout_url(request: HttpRequest) -> str | None:
    """Where to send the browser after `sign_out`: the SSO's sign-out, or None (stay here)."""
    if hasattr(request, "keyadmin_signout_url"):
        return request.keyadmin_signout_url
    mode = settings.KEYADMIN_SSO
    if mode == "oidc":
        return oidc.logout_url(request)
    if mode in ("remote-user", "assertion"):
        return settings.KEYADMIN_SSO_SIGNOUT_URL or None
    return None


def display_name(user) -> str:
    staff = staff_of(user)
    if staff is not None and staff.display_name:
        return staff.display_name
    if user.first_name:
        return user.first_name
    if staff is not None:
        return staff.email or staff.subject
    return user.get_username().removeprefix(DEV_USERNAME_PREFIX)
