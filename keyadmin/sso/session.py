"""A staff member's keyadmin session: opened, ended, and where the browser goes afterwards.

Sessions are opened by a verified identity (the middleware for `remote-user` and `assertion`,
the OIDC callback, or the development sign-in below, refused unless DEBUG is on), and ended with
the App Services session they hold revoked upstream. The guards views use live in `access`.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import SESSION_KEY as USER_KEY
from django.contrib.auth import login, logout
from django.contrib.sessions.backends.base import UpdateError
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.exceptions import SessionInterrupted
from django.contrib.sessions.models import Session
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext as _

from keyadmin import audit, hotreads
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
# Several requests can bring that cookie back at once (a browser restoring its tabs): the one
# whose claim lands first in the session row signs in (`finish_sign_in`), the others wait for it
# up to WAIT_SECONDS, reading the row again every POLL_SECONDS.
CLAIM_KEY = "keyadmin_signin_claim"
# Why 2 s and not longer: each waiting request holds a server thread while it waits, and a
# browser restoring many tabs during a slow sign-in (App Services slow, up to
# `_claim_seconds`) would otherwise hold as many threads for as long, with nothing for other
# staff. A bridge sign-in usually ends well within 2 s, so the tabs still get their page at
# once; past that, a tab gets `access.sign_in_under_way` (a page that reloads itself after
# RELOAD_SECONDS, or HX-Refresh), so a thread is held at most half the time per waiting tab.
WAIT_SECONDS = 2.0
POLL_SECONDS = 0.05
RELOAD_SECONDS = 2
# Claims are dated by the clock of whichever instance made them and read by another's: a claim
# lapses only once it is older than a sign-in can take by this much more, so instance clocks
# that disagree by less than that never end a live claim. Were one to lapse early anyway, the
# sign-in that held it saves nothing and revokes its own App Services session
# (`_save_if_claimed`): one login too many, never a refresh token that no row holds.
CLOCK_SKEW_SECONDS = 30
_SIGNED_IN = "signed in"


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


def after_sign_in(request: HttpRequest, user, *, keep_session_key: bool = False) -> None:
    """A new staff session exists: audit it, then connect App Services if the bridge is on.

    A session opened by `open_on_return` is neither audited nor connected yet: that waits for
    the request that brings its cookie back (`finish_sign_in`, the one caller that keeps the
    session key through the App Services sign-in).
    """
    request.session[LAST_SEEN_KEY] = int(time.time())
    if request.session.get(PENDING_KEY):
        return
    audit.record(request, "signin", audit.OK, detail=f"KEYADMIN_SSO={settings.KEYADMIN_SSO}")
    staff = staff_of(user)
    if bridge.enabled() and staff is not None:
        bridge.sign_in(
            request,
            staff.subject,
            name=staff.display_name,
            email=staff.email,
            keep_session_key=keep_session_key,
        )


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


def finish_sign_in(request: HttpRequest) -> bool:
    """The cookie of a session opened by `open_on_return` came back: sign in now (audited, and
    connected to App Services through the bridge when it is on), for the whole session's life.

    Of several requests bringing it back at once, exactly one signs in, in every worker and
    instance: the one whose claim lands first in the session row (`_claim`). The others wait for
    that sign-in and go on with the session it made, as if they had come after it. False when
    this request waited WAIT_SECONDS in vain (the sign-in is still under way, or the session
    ended meanwhile): the middleware answers `access.sign_in_under_way`, and nothing of this
    request's copy of the session is saved.
    """
    if not request.session.get(PENDING_KEY):
        return True
    key, user_id = request.session.session_key, request.session.get(USER_KEY)
    claim = _claim(key)
    if claim is not None and claim != _SIGNED_IN:
        if _sign_in_claimed(request, key, claim):
            return True
        # Its claim lapsed while it signed in, and another request holds the session now: this
        # one goes on as the others do, waiting for that sign-in (never claiming again).
        claim = _claim(key, may_claim=False)
    # This request's copy is from before the sign-in: saved at the end (a LAST_SEEN_KEY
    # written by `end_if_idle`, a message), it would overwrite the signed-in session, App
    # Services refresh token and all. From here on it has the row as it is now.
    request.session = type(request.session)(key)
    return (
        claim == _SIGNED_IN
        and request.session.get(USER_KEY) == user_id
        and not request.session.get(PENDING_KEY)
    )


def _sign_in_claimed(request: HttpRequest, key: str, claim: str) -> bool:
    """Sign in the pending session `key` that this request claimed (`claim`, its token).

    False when the claim lapsed meanwhile and another request took the session over: nothing
    of this sign-in is saved, and its App Services session is revoked upstream.
    """
    request.session.pop(PENDING_KEY, None)
    request.session.pop(CLAIM_KEY, None)
    request.session.set_expiry(None)
    try:
        # The key stays: the requests waiting for this sign-in hold it, and so does every
        # request the browser sends before this one's answer reaches it. With a new key they
        # would find no session, and each would open another and sign in upstream again. It
        # gives nobody anything: login() made it for this staff member one redirect ago, every
        # request is identified by its assertion again, and a session that arrives with another
        # subject's ends (keyadmin.sso.middleware).
        after_sign_in(request, request.user, keep_session_key=True)
        # Saved now, not after the page: the refresh token is in the row (sign-out and
        # end_expired_sessions revoke it from there) whatever the page does, and the waiting
        # requests go on at once.
        kept = _save_if_claimed(request.session, key, claim)
    except BaseException as error:
        # Nothing of this sign-in is kept: no refresh token that no row holds, and no claim
        # that would keep the next request with this cookie waiting for a sign-in that is not
        # coming: that request signs in again.
        if connection.SESSION_KEY in request.session:
            connection.disconnect(request)
        request.session = type(request.session)(key)
        _release(key, claim)
        if isinstance(error, UpdateError):
            # The row went while it was signed in (a request with another subject ended it).
            raise SessionInterrupted("The session ended while it was being signed in.") from error
        raise
    if not kept:
        # The row kept changing under it (three reads in a row): a claim still on it would hold
        # every other tab back until it lapses, for a sign-in that is not coming.
        _release(key, claim)
    if not kept and connection.SESSION_KEY in request.session:
        # Saved over the other request's claim, it would leave that request's refresh token in
        # no row; left unrevoked, this one's would be in no row either. Revoked whatever the
        # audit insert does: a failing insert must not leave the token in no row.
        logger.warning("a sign-in outlived its claim; its App Services session is revoked")
        why = "another request signed this session in"
        try:
            audit.record(request, "appservices-signout", audit.OK, detail=why)
        finally:
            connection.disconnect(request)
    return kept


def _save_if_claimed(signed_in: SessionStore, key: str, claim: str) -> bool:
    """Save `signed_in` over the pending session row `key` if that row still holds `claim`:
    a compare-and-set, like the claim itself. False when another request claimed it since;
    UpdateError when the row is gone."""
    store = SessionStore()
    for _attempt in range(3):
        stored = hotreads.session_data(key)
        if stored is None:
            raise UpdateError
        held = store.decode(stored).get(CLAIM_KEY)
        if not (isinstance(held, dict) and held.get("by") == claim):
            return False
        saved = Session.objects.filter(session_key=key, session_data=stored).update(
            session_data=signed_in.encode(signed_in._get_session()),
            expire_date=signed_in.get_expiry_date(),
        )
        if saved:
            return True
        # The row changed between the read and the UPDATE: read it again to see how.
    return False


def _claim_seconds() -> float:
    """How long a claim holds: longer than a bridge sign-in can take (the app's location, the
    login and the profile, each within APPSERVICES_DEADLINE). Past that, the request that made
    it is taken to be dead (a worker killed mid-sign-in) and the next one claims the session;
    CLOCK_SKEW_SECONDS more, since the claim's time is another instance's clock."""
    return 3 * settings.APPSERVICES_DEADLINE + 5 + CLOCK_SKEW_SECONDS


def _claim(key: str, *, may_claim: bool = True) -> str | None:
    """Claim the pending session `key` for this request to sign in.

    The claim's token when this request is to sign in; _SIGNED_IN once another request has;
    None when the session ended, or when another request's sign-in was still under way after
    WAIT_SECONDS. Without `may_claim`, only waits for another request's sign-in.

    The claim is written into the session row with a compare-and-set (an UPDATE of the row
    only as this request read it), in autocommit, so it is visible to every worker and
    instance before any upstream request: of the requests that read the same row, the
    database lets exactly one change it (SQLite writes one at a time; PostgreSQL makes a
    concurrent UPDATE wait, then finds the row changed). Not a lock in this process, nor the
    cache: that is per process unless CACHES says otherwise.
    """
    store = SessionStore()
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        stored = hotreads.session_data(key)
        data = store.decode(stored) if stored is not None else {}
        if USER_KEY not in data:
            return None  # expired, or ended
        if not data.get(PENDING_KEY):
            return _SIGNED_IN
        held = data.get(CLAIM_KEY)
        at = held.get("at") if isinstance(held, dict) else None
        now = time.time()
        if may_claim and (not isinstance(at, int | float) or now - at > _claim_seconds()):
            token = secrets.token_hex(8)
            data[CLAIM_KEY] = {"at": now, "by": token}
            claimed = Session.objects.filter(session_key=key, session_data=stored).update(
                session_data=store.encode(data),
                # Lives on while it is signed in, however late in its two minutes it came back.
                expire_date=timezone.now() + timedelta(seconds=PENDING_SECONDS),
            )
            if claimed:
                return token
            # Another request changed the row first: read it again, shortly, as below (never
            # in a tight loop, whatever made the UPDATE miss).
        if time.monotonic() >= deadline:
            return None
        time.sleep(POLL_SECONDS)


def _release(key: str, token: str) -> None:
    """Take this request's claim off the pending session `key`, if it is still there."""
    store = SessionStore()
    stored = hotreads.session_data(key)
    data = store.decode(stored) if stored is not None else {}
    held = data.get(CLAIM_KEY)
    if isinstance(held, dict) and held.get("by") == token:
        del data[CLAIM_KEY]
        Session.objects.filter(session_key=key, session_data=stored).update(
            session_data=store.encode(data)
        )


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
