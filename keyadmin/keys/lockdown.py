"""Lock an App Services user down (disable all their enabled keys) and undo exactly that.

The confirmation costs one list request and names the user, the app and the keys it will
disable; its form posts their ids. The lock-down itself lists again (keyadmin/keys/batch.py says
why) and disables each of those still enabled: one request per key, within the batch deadline.
Enabled keys the confirmation did not show (made or enabled since) are reported, not touched:
the staff member confirmed a list, not a blank cheque. A retry posts the failed and unreached
keys again under the same batch id, so that the undo finds them.

Undo reads the lock-down's own trail: the keys it disabled (its DISABLE rows with outcome ok, of
this user and app) whose last change through keyadmin is still that disable, and re-enables
those the fresh list shows still disabled. Keys disabled before the lock-down were not disabled
by it; keys changed by hand since were decided on since: both stay as they are. The undo page
is reachable from the keys page while the lock-down is the user's latest, and from its rows in
the audit trail for as long as the trail keeps them.

One undo of a lock-down runs at a time, across workers and instances: it claims the lock-down
in the database (batch.claim_undo) before any request upstream. A second undo meanwhile (two
tabs, a double submit, a replayed form), and one after the first that finds nothing left, are
refused with no request upstream and a denied row. The page shows a lock-down of another user
or app as only that: whose it is and what it did are for that user's operators and auditors.
A session of the user that cannot manage keys (opened with an API key) sees the plan and why
it cannot carry it out, no form; its undo, posted all the same, is refused in place, unclaimed.
"""

from __future__ import annotations

import logging

from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from keyadmin import appservices, audit
from keyadmin.appservices.connection import forget
from keyadmin.keys import batch
from keyadmin.keys.guards import (
    HtmxHttpRequest,
    answer_status,
    app_role_required,
    appservices_required,
    bound_form,
    page_status,
    upstream_errors,
)
from keyadmin.keys.views import _bound, _manageable
from keyadmin.models import AuditEvent
from keyadmin.sso.access import role_required
from keyadmin.sso.roles import OPERATOR

logger = logging.getLogger("keyadmin.views")

LOCKDOWN = "keyadmin/lockdown.html"
UNDO = "keyadmin/lockdown-undo.html"


def _confirm_failed(request: HtmxHttpRequest, error: appservices.AppServicesError) -> HttpResponse:
    context = _bound(request, {"list_error": error})
    return render(request, LOCKDOWN, context, status=answer_status(request, page_status(error)))


@require_GET
@never_cache
@role_required(OPERATOR)
@appservices_required
@app_role_required(OPERATOR)
@upstream_errors(_confirm_failed)
def lockdown_confirm(request: HtmxHttpRequest) -> HttpResponse:
    keys = _manageable(request).list_api_keys()
    enabled = [key for key in keys if key.enabled]
    context = {"enabled": enabled, "disabled_count": len(keys) - len(enabled)}
    return render(request, LOCKDOWN, _bound(request, context))


def _results(
    request: HtmxHttpRequest, done: batch.Batch, template: str, kind: str, **extra
) -> HttpResponse:
    if done.session_ended:
        # Forgotten like after any 401, but the answer is still the results: the staff member
        # must see what was done before signing in again.
        forget(request)
    context = _bound(request, {"batch": done, "stop_message": batch.outcome_message(done), **extra})
    context["batch_token"] = batch.batch_token(done.batch_id, request.connection, kind)
    partial = f"{template}#results" if request.htmx else template
    return render(request, partial, context)


@require_POST
@never_cache
@role_required(OPERATOR)
@appservices_required
@app_role_required(OPERATOR)
@bound_form(AuditEvent.Action.LOCK_DOWN)
@upstream_errors(_confirm_failed)
def lockdown(request: HtmxHttpRequest) -> HttpResponse:
    session = _manageable(request)
    retry_of = batch.batch_from_token(
        request.POST.get("batch"), request.connection, AuditEvent.Action.LOCK_DOWN
    )
    done = batch.perform(
        request,
        session,
        batch.DISABLE,
        batch.posted_ids(request.POST.getlist("key")),
        summary_action=AuditEvent.Action.LOCK_DOWN,
        batch_id=retry_of or batch.new_batch_id(),
        confirmed_enabled=True,
        summary_detail="retry" if retry_of else "",
    )
    return _results(request, done, LOCKDOWN, AuditEvent.Action.LOCK_DOWN)


# --- undo ---


def _undo_context(request: HtmxHttpRequest, batch_id: str) -> dict:
    """What the undo page may say: everything when the lock-down is of the connected user and
    app ("mine"); otherwise only that it exists. Its user, app, author and keys are for that
    user's operators and for auditors (the audit page), not for whoever holds its id."""
    summary = batch.lockdown_row(batch_id)
    connection = request.connection
    context = {"batch_id": batch_id, "found": summary is not None, "mine": False}
    if summary is None or (summary.app_id, summary.appservices_user_id) != (
        connection.app_id,
        connection.user_id,
    ):
        return context
    again, left = batch.undo_plan(connection, batch_id)
    return {
        **context,
        "mine": True,
        "lockdown": summary,
        "again": again,
        "left": left,
        "undone": batch.last_undo(connection, batch_id),
        "under_way": batch.undo_under_way(batch_id),
    }


def _undo_page(request: HtmxHttpRequest, context: dict, status: int = 200) -> HttpResponse:
    partial = f"{UNDO}#confirm" if request.htmx and context["mine"] else UNDO
    return render(request, partial, _bound(request, context), status=answer_status(request, status))


@require_GET
@role_required(OPERATOR)
@appservices_required
@app_role_required(OPERATOR)
def undo_confirm(request: HtmxHttpRequest, batch_id: str) -> HttpResponse:
    # From the trail alone, no request upstream: the undo itself reads the list.
    context = _undo_context(request, str(batch_id))
    return render(request, UNDO, _bound(request, context), status=200 if context["mine"] else 404)


def _refuse_undo(request: HtmxHttpRequest, batch_id: str, context: dict, why: str):
    """An undo that would do nothing, or twice: no upstream request, one audit row, the page."""
    logger.info("undo of a lock-down refused: %s", why)
    audit.record(
        request,
        AuditEvent.Action.LOCK_DOWN_UNDO,
        audit.DENIED,
        detail=f"lock-down {batch_id}: {why}",
    )
    return _undo_page(request, {**context, "refused": True})


def _undo_failed(
    request: HtmxHttpRequest, error: appservices.AppServicesError, batch_id: str
) -> HttpResponse:
    """An App Services error that reached the undo view: the undo page, with the problem in
    place of the results. `batch.perform` answers every error of its own requests (the list's,
    each key's) with results, so one that gets here came before the first request, or from
    none: nothing was changed, and that is what the page says. The claim, if taken, was
    released on the way out of the view."""
    batch_id = str(batch_id)
    refused = isinstance(error, appservices.NotAllowed)  # decided here, without a request
    audit.record(
        request,
        AuditEvent.Action.LOCK_DOWN_UNDO,
        audit.DENIED if refused else audit.FAILED,
        status=error.status,
        detail=f"lock-down {batch_id}: {type(error).__name__}",
    )
    context = _undo_context(request, batch_id)
    if not context["mine"]:
        return render(request, UNDO, _bound(request, context), status=404)
    return _undo_page(request, {**context, "undo_error": error}, status=page_status(error))


@require_POST
@never_cache
@role_required(OPERATOR)
@appservices_required
@app_role_required(OPERATOR)
@bound_form(AuditEvent.Action.LOCK_DOWN_UNDO)
@upstream_errors(_undo_failed)
def undo(request: HtmxHttpRequest, batch_id: str) -> HttpResponse:
    batch_id = str(batch_id)
    plan = _undo_context(request, batch_id)
    if not plan["mine"]:
        # Another user's or app's lock-down (or none): refused before any claim or request.
        return render(request, UNDO, _bound(request, plan), status=404)
    # A session that cannot manage keys (API key, anonymous) is of this user too: refused
    # (NotAllowed, to _undo_failed) before the claim, so that it holds back no other undo.
    session = _manageable(request)
    if not plan["again"] and plan["under_way"] is None:
        return _refuse_undo(request, batch_id, plan, "nothing left to undo")
    turn = batch.claim_undo(request, batch_id)
    if not turn.ours:
        plan["under_way"] = turn.claim
        return _refuse_undo(
            request, batch_id, plan, f"already being undone by undo {turn.claim.undo_batch_id}"
        )
    try:
        # Read again under the claim: an undo that ended between the first read and the claim
        # has its rows in the trail now, and what it did is not done twice.
        plan = _undo_context(request, batch_id)
        plan["under_way"] = None  # this request's own claim
        if not plan["again"]:
            return _refuse_undo(request, batch_id, plan, "nothing left to undo")
        done = batch.perform(
            request,
            session,
            batch.ENABLE,
            [row.key_id for row in plan["again"]],
            summary_action=AuditEvent.Action.LOCK_DOWN_UNDO,
            batch_id=turn.claim.undo_batch_id,
            left=[row.key_id for row in plan["left"]],
            summary_detail=f"{batch.UNDO_PREFIX} {batch_id}",
            # Each key row names the lock-down: an undo that dies midway leaves no summary.
            row_detail=batch.undo_row_detail(batch_id),
        )
    finally:
        batch.release_undo(turn.claim)
    return _results(
        request,
        done,
        UNDO,
        AuditEvent.Action.LOCK_DOWN_UNDO,
        undone_id=batch_id,
        lockdown=plan["lockdown"],
    )
