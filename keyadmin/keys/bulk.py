"""Enable, disable or delete the keys selected on the keys page, after a confirmation.

The toolbar's form posts the selected ids and the action. Without `confirm=1` the answer is the
confirmation: one list request, so that it names the keys as App Services lists them, counts
only this user's keys, and says which are already in the asked state. Its form posts them again
with `confirm=1`: then keyadmin/keys/batch.py lists again and acts on each, one request per key,
and answers with a result per key (and, for htmx, the changed rows, which keyadmin.js puts in
place). Without JavaScript the same forms are plain pages.
"""

from __future__ import annotations

from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from keyadmin import appservices
from keyadmin.appservices.connection import forget
from keyadmin.keys import batch, notes
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

BULK = "keyadmin/bulk.html"


def _render(request: HtmxHttpRequest, partial: str, context: dict, status: int = 200):
    template = f"{BULK}#{partial}" if request.htmx else BULK
    return render(
        request, template, _bound(request, context), status=answer_status(request, status)
    )


def _bulk_failed(request: HtmxHttpRequest, error: appservices.AppServicesError) -> HttpResponse:
    return _render(request, "confirm", {"list_error": error}, status=page_status(error))


@require_POST
@never_cache
@role_required(OPERATOR)
@appservices_required
@app_role_required(OPERATOR)
@bound_form(AuditEvent.Action.BULK)
@upstream_errors(_bulk_failed)
def bulk(request: HtmxHttpRequest) -> HttpResponse:
    session = _manageable(request)
    action = request.POST.get("action")
    wanted = batch.posted_ids(request.POST.getlist("key"))
    if action not in batch.KEY_ACTIONS or not wanted:
        return _render(request, "confirm", {"nothing": True})
    if request.POST.get("confirm") != "1":
        listed = {key.id: key for key in session.list_api_keys()}
        selected = [listed[key_id] for key_id in wanted if key_id in listed]
        already = [key for key in selected if batch.already(action, key)]
        context = {
            "action": action,
            "selected": selected,
            "already": already,
            "missing": len(wanted) - len(selected),
        }
        return _render(request, "confirm", context)
    retry_of = batch.batch_from_token(
        request.POST.get("batch"), request.connection, AuditEvent.Action.BULK
    )
    done = batch.perform(
        request,
        session,
        action,
        wanted,
        summary_action=AuditEvent.Action.BULK,
        batch_id=retry_of or batch.new_batch_id(),
        summary_detail="retry" if retry_of else "",
    )
    # The changed rows go back with their notes, as every other answer renders a row.
    changed_rows = (
        [] if done.session_ended else notes.annotate(request.connection, done.changed_keys)
    )
    if done.session_ended:
        forget(request)  # as after any 401; the results still say what was done
    context = {
        "action": action,
        "batch": done,
        "changed_rows": changed_rows,
        "batch_token": batch.batch_token(done.batch_id, request.connection, AuditEvent.Action.BULK),
        "stop_message": batch.outcome_message(done),
    }
    return _render(request, "results", context)
