"""The audit trail: one call per staff action, never a secret.

    audit.record(request, "create", "ok", key_id=key.id, key_name=key.name)
    audit.record_error(request, "delete", error, key_id=key_id)

`record` fills in who (the staff member's issuer, subject and name), the App Services user the
session is connected to, the request id and the client address. Free text is cut short, control
characters are dropped and anything shaped like a token is replaced by "[redacted]": bodies,
headers, cookies, tokens and key secrets have no field here and must never be passed as `detail`.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.contrib.auth import SESSION_KEY as SESSION_KEY_USER
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AnonymousUser
from django.core.cache import cache
from django.db import DatabaseError
from django.http import HttpRequest
from django.utils import timezone

from keyadmin import hotreads, metrics
from keyadmin.appservices import KEY_ID_PATTERN
from keyadmin.appservices.connection import SESSION_KEY, stored_about
from keyadmin.models import AuditEvent
from keyadmin.redact import for_audit
from keyadmin.sso.sources import StaffIdentity
from keyadmin.sso.staff import staff_of

logger = logging.getLogger("keyadmin.audit")

_KEY_ID = re.compile(KEY_ID_PATTERN)

OK = AuditEvent.Outcome.OK
FAILED = AuditEvent.Outcome.FAILED
DENIED = AuditEvent.Outcome.DENIED

SAMPLE_SECONDS = 60


def client_address(request: HttpRequest) -> str | None:
    """REMOTE_ADDR, or the address the nearest trusted proxy saw (KEYADMIN_TRUSTED_PROXY_COUNT).

    Each proxy appends the address it received the request from to X-Forwarded-For, so with N
    trusted proxies the client is the N-th entry from the right; entries further left are
    whatever the client chose to send.
    """
    candidate = request.META.get("REMOTE_ADDR")
    proxies = settings.KEYADMIN_TRUSTED_PROXY_COUNT
    if proxies > 0:
        forwarded = [
            part.strip()
            for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
            if part.strip()
        ]
        if len(forwarded) >= proxies:
            candidate = forwarded[-proxies]
    try:
        return str(ipaddress.ip_address(candidate or ""))
    except ValueError:
        return None


def _who(request: HttpRequest, identity: StaffIdentity | None) -> dict[str, str]:
    if identity is not None:
        return {
            "staff_issuer": identity.issuer[:255],
            "staff_subject": identity.subject[:255],
            "staff_name": for_audit(identity.name, 200, opaque_too=False),
        }
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {}
    staff = staff_of(user)
    if staff is None:
        return {
            "staff_name": for_audit(
                user.get_full_name() or user.get_username(), 200, opaque_too=False
            )
        }
    return {
        "staff_issuer": staff.issuer,
        "staff_subject": staff.subject,
        "staff_name": for_audit(staff.display_name, 200, opaque_too=False),
    }


def staff_name(request: HttpRequest) -> str:
    """The signed-in staff member's name as a row would carry it ("" for nobody)."""
    return _who(request, None).get("staff_name", "")


def _appservices_user(request: HttpRequest) -> dict:
    """The App Services user, app and (while acting for a customer) customer and ticket."""
    connection = getattr(request, "connection", None)
    if connection is not None:
        acting = connection.acting
        return {
            "appservices_user_id": str(connection.user_id)[:64],
            "app_id": str(connection.app_id)[:64],
            "acting_for": acting.customer_id[:255] if acting else "",
            "ticket": acting.ticket[:255] if acting else "",
            "acting_until": acting.ends_at if acting else None,
        }
    session = getattr(request, "session", None)
    stored = session.get(SESSION_KEY) if session is not None else None
    if not isinstance(stored, dict):
        return {"appservices_user_id": "", "app_id": "", "acting_for": "", "ticket": ""}
    return stored_about(stored)


def _time_box_end(ends_at: object) -> datetime | None:
    # Epoch seconds as the connection keeps them; anything else (a session from before) is none.
    if isinstance(ends_at, int) and not isinstance(ends_at, bool) and 0 < ends_at < 2**37:
        return datetime.fromtimestamp(ends_at, UTC)
    return None


def record(
    request: HttpRequest,
    action: str,
    outcome: str,
    *,
    status: int | None = None,
    key_id: str | None = None,
    key_name: str | None = None,
    detail: str = "",
    identity: StaffIdentity | None = None,
    about: dict | None = None,
    batch_id: str = "",
    changes: dict[str, list[str]] | None = None,
) -> AuditEvent | None:
    """Append one event. `identity` names the actor when nobody is signed in (a refusal).

    `batch_id` ties together the rows of one multi-key action (a lock-down, its undo, a bulk
    action); `changes` is what a note edit changed, {"field": [old, new]}.

    The app, customer and ticket come from the connection; `about` names them instead when the
    row is about a connection not (or no longer) in the session: a refused or ended act-for.
    """
    if action not in AuditEvent.Action.values:
        raise ValueError(f"unknown audit action {action!r}")
    if outcome not in AuditEvent.Outcome.values:
        raise ValueError(f"unknown audit outcome {outcome!r}")
    who = _who(request, identity)
    appservices_user = dict(about if about is not None else _appservices_user(request))
    ends_at = appservices_user.pop("acting_until", None)
    event = AuditEvent(
        action=action,
        outcome=outcome,
        status=status if isinstance(status, int) and 0 <= status < 1000 else None,
        **appservices_user,
        acting_until=_time_box_end(ends_at),
        key_id=key_id if isinstance(key_id, str) and _KEY_ID.fullmatch(key_id) else "",
        key_name=for_audit(key_name, 64, opaque_too=False),
        request_id=str(getattr(request, "request_id", ""))[:64],
        client_address=client_address(request),
        detail=for_audit(detail, 200, opaque_too=True),
        batch_id=batch_id[:36],
        changes=changes,
        **who,
    )
    try:
        # What event.save() sends, without building the query each time (keyadmin.hotreads).
        hotreads.audit_insert(event)
    except DatabaseError:
        # The action itself already happened (or was refused); a broken audit table must not
        # turn that into a 500. The log line below still carries the event.
        logger.exception("could not store the audit event %s/%s", action, outcome)
        event = None
    metrics.audit_written(action, outcome, stored=event is not None)
    logger.info(
        "audit action=%s outcome=%s status=%s staff=%r key_id=%s request_id=%s",
        action,
        outcome,
        status,
        who.get("staff_subject", ""),
        key_id or "",
        getattr(request, "request_id", ""),
    )
    return event


def record_for_session(
    session_data: dict, action: str, outcome: str, *, detail: str = ""
) -> AuditEvent | None:
    """`record` for a stored session nobody is using (the scheduled cleanup): the staff member
    is the session's user, the App Services user, app, customer and ticket its connection's;
    no request, so no address or request id."""
    request = HttpRequest()
    request.session = session_data
    user_id = session_data.get(SESSION_KEY_USER)
    request.user = (
        get_user_model().objects.filter(pk=user_id).first() if user_id is not None else None
    ) or AnonymousUser()
    return record(request, action, outcome, detail=detail)


def record_error(
    request: HttpRequest,
    action: str,
    error: Exception,
    *,
    key_id: str | None = None,
    key_name: str | None = None,
) -> AuditEvent | None:
    """A failed upstream action: the error's class and status, never its body."""
    return record(
        request,
        action,
        FAILED,
        status=getattr(error, "status", None),
        key_id=key_id,
        key_name=key_name,
        detail=type(error).__name__,
    )


def keys_made_for(app_id: str, appservices_user_id: str) -> bool:
    """Whether keyadmin ever tried to create a key for this App Services user of this app.

    Tried, not only made: a create whose answer was lost may have made a key all the same.
    """
    return (
        AuditEvent.objects.filter(
            action=AuditEvent.Action.CREATE,
            app_id=app_id,
            appservices_user_id=appservices_user_id,
        )
        .exclude(outcome=DENIED)
        .exists()
    )


def record_sampled(
    request: HttpRequest,
    action: str,
    outcome: str,
    *,
    detail: str,
    identity: StaffIdentity | None = None,
) -> AuditEvent | None:
    """Like `record`, but at most one row per client address, action and outcome a minute.

    For refusals anyone can cause at will (a flood of garbage assertions): they must not bury
    the trail. The ones not written are counted in Django's cache, the next row written says how
    many, and each is still logged.
    """
    address = client_address(request)
    counter = f"keyadmin:audit-unrecorded:{action}:{outcome}:{address or '-'}"
    recent = AuditEvent.objects.filter(
        action=action,
        outcome=outcome,
        at__gte=timezone.now() - timedelta(seconds=SAMPLE_SECONDS),
        **({"client_address": address} if address else {"client_address__isnull": True}),
    )
    if recent.exists():
        _count(counter)
        if action == AuditEvent.Action.SIGNIN:
            metrics.staff_signin(outcome)
        logger.info(
            "audit action=%s outcome=%s from %s counted, not recorded: one row a minute (%s)",
            action,
            outcome,
            address or "-",
            for_audit(detail, 200, opaque_too=True),
        )
        return None
    unrecorded = cache.get(counter, 0)
    if unrecorded:
        cache.delete(counter)
        detail = f"{unrecorded} more like this from this address not recorded; {detail}"
    return record(request, action, outcome, detail=detail, identity=identity)


def _count(counter: str) -> None:
    cache.add(counter, 0, timeout=24 * 60 * 60)
    try:
        cache.incr(counter)
    except ValueError:  # expired between the two calls
        cache.add(counter, 1, timeout=24 * 60 * 60)
