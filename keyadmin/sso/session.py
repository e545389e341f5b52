"""A staff member's keyadmin session: opened, ended, and where the browser goes afterwards.

Sessions are opened by a verified identity (the middleware for `remote-user` and `assertion`,
the OIDC callback, or the development sign-in below, refused unless DEBUG is on), and ended with
the App Services session they hold revoked upstream. The guards views use live in `access`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login, logout
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _

from keyadmin import audit
from keyadmin.appservices import connection
from keyadmin.sso import bridge, cookie_check, oidc
from keyadmin.sso.backends import STAFF_BACKEND
from keyadmin.sso.mode import DEV_ISSUER, dev_sign_in_enabled
from keyadmin.sso.roles import ROLES
from keyadmin.sso.sources import StaffIdentity
from keyadmin.sso.staff import provision, staff_of

logger = logging.getLogger("keyadmin.sessions")

DEV_USERNAME_PREFIX = "dev:"
# When the staff member last made a request (epoch seconds), written at most once a minute so
# that a busy page does not write its session row on every request.
LAST_SEEN_KEY = "keyadmin_last_seen"
TOUCH_SECONDS = 60
# A session opened for a request that may not bring its cookie back (`open_on_return`) is
# signed in by the request that does; until then it lives as long as the mark on the redirect
# means something, and no less: a browser coming back with a valid mark finds its session.
PENDING_KEY = "keyadmin_signin_pending"
PENDING_SECONDS = cookie_check.MAX_AGE_SECONDS


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
    """A new staff session exists: audit it, then connect App Services if the bridge is on.

    A session opened by `open_on_return` is neither audited nor connected yet: that waits for
    the request that brings its cookie back (`finish_sign_in`).
    """
    request.session[LAST_SEEN_KEY] = int(time.time())
    if request.session.get(PENDING_KEY):
        return
    audit.record(request, "signin", audit.OK, detail=f"KEYADMIN_SSO={settings.KEYADMIN_SSO}")
    staff = staff_of(user)
    if bridge.enabled() and staff is not None:
        bridge.sign_in(request, staff.subject, name=staff.display_name, email=staff.email)


def _drop_appservices(request: HttpRequest, why: str) -> None:
    if connection.SESSION_KEY in request.session:
        current = connection.get_connection(request)
        if current is None or current.acting is None:
            audit.record(request, "appservices-signout", audit.OK)  # while the user is known
        connection.disconnect(request)  # revokes the refresh token upstream, best effort
        if current is not None and current.acting is not None:
            # Every way acting ends has its row: a start without an end reads as still open.
            about = connection.acting_about(current)
            audit.record(request, "act-for-end", audit.OK, detail=why, about=about)


def sign_out(request: HttpRequest) -> None:
    """End the keyadmin session: App Services token revoked, session flushed, event audited.

    Call `signout_url` afterwards for where to send the browser (the SSO's own sign-out): it was
    worked out here, before the session that it may need was flushed.
    """
    request.keyadmin_signout_url = signout_url(request)
    if request.user.is_authenticated:
        _drop_appservices(request, "staff signed out")
        audit.record(request, "signout", audit.OK)
    logout(request)  # flushes the session, App Services tokens included


def end_session(request: HttpRequest, reason: str) -> None:
    """End a session the SSO no longer vouches for (subject changed or gone, group removed)."""
    if request.user.is_authenticated and request.session.get(PENDING_KEY):
        logout(request)  # never signed in (`open_on_return`): nothing to revoke or audit
    elif request.user.is_authenticated:
        _drop_appservices(request, f"staff session ended: {reason}"[:200])
        audit.record(request, "signout", audit.OK, detail=reason)
        logout(request)


def open_on_return(request: HttpRequest) -> None:
    """Open a staff session for this deferred request, but sign in only when it comes back.

    For a client that may keep no cookies (keyadmin.keys.guards.appservices_required redirects
    it to the same page): until its next request brings the cookie back, the session is a row
    with the user in it and nothing more. No sign-in audit row, no App Services sign-in (no
    upstream request, no refresh token in a row nobody will use), and it expires in
    PENDING_SECONDS rather than KEYADMIN_SESSION_SECONDS, so a client that never comes back
    leaves one short-lived row per visit.
    """
    request.session[PENDING_KEY] = True
    request.session.set_expiry(PENDING_SECONDS)


def finish_sign_in(request: HttpRequest) -> None:
    """The cookie of a session opened by `open_on_return` came back: sign in now (audited, and
    connected to App Services through the bridge when it is on), for the whole session's life."""
    if request.session.pop(PENDING_KEY, None) is None:
        return
    request.session.set_expiry(None)
    after_sign_in(request, request.user)


def is_deferred(request: HttpRequest) -> bool:
    """True when this request's staff member was identified without a session (assertion mode,
    no session cookie): the identity middleware opens one only if the view stores something."""
    return getattr(request, "staff_session_deferred", False)


def _acting_of(session_data) -> dict | None:
    stored = session_data.get(connection.SESSION_KEY)
    acting = stored.get("acting") if isinstance(stored, dict) else None
    return acting if isinstance(acting, dict) else None


def _idle_for(session_data, now: int) -> int | None:
    last_seen = session_data.get(LAST_SEEN_KEY)
    return now - last_seen if isinstance(last_seen, int) else None


def end_if_idle(request: HttpRequest) -> bool:
    """End a session unused for KEYADMIN_SESSION_IDLE_SECONDS, saying so on the next page.

    Otherwise note this request as activity (at most once a minute). True when it ended.
    """
    if not request.user.is_authenticated:
        return False
    now = int(time.time())
    idle = _idle_for(request.session, now)
    limit = settings.KEYADMIN_SESSION_IDLE_SECONDS
    if idle is not None and idle > limit:
        end_session(request, f"no activity for {limit // 60} minutes")
        messages.info(
            request,
            _("You were signed out after %(minutes)s minutes without activity.")
            % {"minutes": limit // 60},
        )
        return True
    if idle is None or idle >= TOUCH_SECONDS:
        request.session[LAST_SEEN_KEY] = now
    return False


@dataclass
class Cleanup:
    revoked: int = 0  # App Services refresh tokens revoked upstream
    deleted: int = 0  # expired session rows removed
    disconnected: int = 0  # idle sessions whose App Services token was revoked and dropped
    left: int = 0  # not looked at within the time budget; the next run takes them


def end_expired_sessions(budget_seconds: float) -> Cleanup:
    """Revoke the App Services tokens of sessions nobody can use any more, then drop them.

    Expired sessions (past KEYADMIN_SESSION_SECONDS) are deleted. Idle ones (past
    KEYADMIN_SESSION_IDLE_SECONDS), and ones acting for a customer past the time box, keep their
    row without the token, so their owner's next request still says why they were signed out;
    acting that ends here gets its act-for-end row. A revocation App Services does not confirm is
    logged and the token dropped anyway; once `budget_seconds` have passed, the rest waits.
    """
    done = Cleanup()
    started = time.monotonic()
    now = int(time.time())
    store = SessionStore()
    for row in Session.objects.order_by("expire_date").iterator(chunk_size=200):
        if time.monotonic() - started > budget_seconds:
            done.left += 1
            continue
        data = store.decode(row.session_data)
        expired = row.expire_date <= timezone.now()
        idle = _idle_for(data, now)
        idle_out = idle is not None and idle > settings.KEYADMIN_SESSION_IDLE_SECONDS
        acting = _acting_of(data)
        # A tab closed while acting sends no next request to end the time box: this does.
        boxed_out = acting is not None and not (
            isinstance(acting.get("ends_at"), int) and acting["ends_at"] > now
        )
        if not expired and not ((idle_out or boxed_out) and connection.SESSION_KEY in data):
            continue
        if connection.revoke_stored(data):
            done.revoked += 1
        if acting is not None:
            why = "time box ended" if boxed_out else "staff session expired" if expired else "idle"
            # Every way acting ends has its row, this one too: a start without an end reads as
            # still open.
            audit.record_for_session(data, "act-for-end", audit.OK, detail=f"{why} (cleanup)")
        if expired:
            row.delete()
            done.deleted += 1
        else:
            data.pop(connection.SESSION_KEY, None)
            Session.objects.filter(pk=row.pk).update(session_data=store.encode(data))
            done.disconnected += 1
    logger.info(
        "sessions: %d App Services tokens revoked, %d expired sessions deleted, "
        "%d idle sessions disconnected, %d not looked at (time budget)",
        done.revoked,
        done.deleted,
        done.disconnected,
        done.left,
    )
    return done


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
