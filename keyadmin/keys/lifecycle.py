"""A key's life after its creation: its note, its review, its rotation to a successor.

A note edit and "Reviewed" change only keyadmin's own table: no App Services request, one audit
row with what changed. Rotate creates the successor with exactly one App Services request, as
create does (never retried; a lost answer is looked for with one list request), and links the
two keys in their notes and in one ROTATE audit row naming both.
"""

from __future__ import annotations

from dataclasses import replace

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils import formats
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from django.views.decorators.http import require_http_methods, require_POST

from keyadmin import appservices, audit
from keyadmin.keys import notes, resubmit
from keyadmin.keys.forms import NoteForm, RotateKeyForm, posted_key_name
from keyadmin.keys.guards import (
    NAME_ERRORS,
    HtmxHttpRequest,
    app_role_required,
    appservices_required,
    bound_form,
    check_binding,
    upstream_errors,
)
from keyadmin.keys.views import (
    KEYS,
    _bound,
    _clock,
    _label,
    _manageable,
    _noted,
    _owner,
    _posted_key,
    just_made_twin,
    look_for_lost_key,
    with_rotate_nonce,
)
from keyadmin.sso.access import role_required
from keyadmin.sso.roles import OPERATOR


def _row_answer(request: HtmxHttpRequest, key_id: str, notice: str, **context) -> HttpResponse:
    """The row again, from keyadmin's table and what the row posted, with `notice`."""
    key = _noted(request, _posted_key(request, key_id))
    if not request.htmx:
        messages.success(request, notice)
        return redirect("keyadmin:keys")
    context = _bound(request, {"key": key, "notice": notice, **context})
    return render(request, f"{KEYS}#row-changed", context)


def _note_refused(request: HtmxHttpRequest, key_id: str, form: NoteForm) -> HttpResponse:
    # The row keeps what was typed, the edit form open, each refused field saying why.
    key = _noted(request, _posted_key(request, key_id))
    context = _bound(request, {"key": key, "note_form": form})
    if request.htmx:
        return render(request, f"{KEYS}#key-row", context)
    context["page_title"] = _("Edit the note")
    return render(request, "keyadmin/row-page.html", context)


# --- a row's form, opened: "Edit note" and "Rotate" ---


@never_cache
@role_required(OPERATOR)
@appservices_required
@app_role_required(OPERATOR)
def _open_form(request: HtmxHttpRequest, key_id: str, *, rotate: bool) -> HttpResponse:
    """The row with its note or rotate form open: nothing upstream, nothing written.

    A list carries a button per row instead of two forms. The row's state comes from the link,
    as row forms post it (display only); the form is bound to the connection like every other
    one, and with htmx only to the one the page was rendered for (its binding header): under
    another user's heading it would act on someone the page does not show.
    """
    label = posted_key_name(request.GET.get("name")) or key_id
    if request.htmx:
        stale = check_binding(request)
        if stale is not None:
            context = {"stale": stale, "key_id": key_id, "label": label}
            return render(request, f"{KEYS}#stale-row", context)
    shown = appservices.ApiKey(
        id=key_id,
        name=posted_key_name(request.GET.get("name")),
        disabled=request.GET.get("disabled") == "true",
    )
    key = _noted(request, shown)
    suggested = posted_key_name(request.GET.get("to"))
    if suggested:
        key = replace(key, rotate_to=suggested)
    if rotate:
        key = with_rotate_nonce(request, key)
    context = _bound(request, {"key": key, "rotate_open": rotate, "note_open": not rotate})
    if request.htmx:
        return render(request, f"{KEYS}#key-row", context)
    context["page_title"] = _("Rotate a key") if rotate else _("Edit the note")
    return render(request, "keyadmin/row-page.html", context)


# A note that was refused as a secret is in its POST: no error report shows what was typed.
@sensitive_post_parameters(*NoteForm.text_fields)
@require_http_methods(["GET", "POST"])
def edit_note(request: HtmxHttpRequest, key_id: str) -> HttpResponse:
    if request.method == "GET":
        return _open_form(request, key_id, rotate=False)
    return _save_note(request, key_id=key_id)


@require_http_methods(["GET", "POST"])
def rotate_key(request: HtmxHttpRequest, key_id: str) -> HttpResponse:
    if request.method == "GET":
        return _open_form(request, key_id, rotate=True)
    return _rotate(request, key_id=key_id)


# --- note ---


@role_required(OPERATOR)
@appservices_required
@app_role_required(OPERATOR)
@bound_form("note")
def _save_note(request: HtmxHttpRequest, key_id: str) -> HttpResponse:
    form = NoteForm(request.POST)
    if not form.is_valid():
        return _note_refused(request, key_id, form)
    change = notes.save_note(request.connection, key_id, form.note_values())
    label = _label(_posted_key(request, key_id))
    if not change.changes:
        return _row_answer(
            request, key_id, _("Nothing changed in the note of “%(key)s”.") % {"key": label}
        )
    audit.record(request, "note", audit.OK, key_id=key_id, changes=change.changes)
    notice = _("Note of key “%(key)s” of %(who)s (app %(app)s) saved.") % {
        "key": label,
        **_owner(request),
    }
    return _row_answer(request, key_id, notice, focus_note=True)


@require_POST
@role_required(OPERATOR)
@appservices_required
@app_role_required(OPERATOR)
@bound_form("reviewed")
def mark_reviewed(request: HtmxHttpRequest, key_id: str) -> HttpResponse:
    """The key was looked at and still needed: its review date moves one period on from today."""
    next_review = notes.next_review(request.connection.app)
    change = notes.save_note(request.connection, key_id, {"review_by": next_review})
    if change.changes:
        audit.record(request, "reviewed", audit.OK, key_id=key_id, changes=change.changes)
    notice = _("Key “%(key)s” reviewed: the next review is due on %(date)s.") % {
        "key": _label(_posted_key(request, key_id)),
        "date": formats.date_format(next_review, "Y-m-d"),
    }
    return _row_answer(request, key_id, notice, focus_note=True)


# --- rotate ---


def _render_rotate(
    request: HtmxHttpRequest,
    key_id: str,
    form: RotateKeyForm,
    *,
    problem: str = "",
    lost_key: appservices.ApiKey | None = None,
) -> HttpResponse:
    """The old key's row with its rotate form open: the typed name kept, and why it failed."""
    key = with_rotate_nonce(request, _noted(request, _posted_key(request, key_id)))
    if lost_key is not None:
        lost_key = _noted(request, lost_key)
    context = {"key": key, "rotate_form": form, "rotate_problem": problem, "lost_key": lost_key}
    context = _bound(request, context)
    if request.htmx:
        return render(request, "keyadmin/rotate-answer.html", context)
    context["page_title"] = _("Rotate a key")
    return render(request, "keyadmin/row-page.html", context)


def _rotate_failed(
    request: HtmxHttpRequest, error: appservices.AppServicesError, key_id: str
) -> HttpResponse:
    form = RotateKeyForm(request.POST)
    form.is_valid()
    resubmit.settle(request, made_nothing=True)
    if isinstance(error, appservices.KeyNameTaken) and "new_name" in form.cleaned_data:
        twin = just_made_twin(request, form.cleaned_data["new_name"])
        if twin is not None:
            problem = _(
                "A key named “%(name)s” was created moments ago. If that was this form sent "
                "twice (a double click, or a reload while it was working), its secret went to "
                "the first answer, which the browser dropped."
            ) % {"name": twin.name}
            problem += " " + _(
                "If you did not store the secret, delete the key and create a new one."
            )
            return _render_rotate(request, key_id, form, problem=problem, lost_key=twin)
    if isinstance(error, NAME_ERRORS) and "new_name" in form.cleaned_data:
        form.add_error("new_name", error.message)
        return _render_rotate(request, key_id, form)
    return _render_rotate(request, key_id, form, problem=error.message)


def _lost_rotate(
    request: HtmxHttpRequest,
    session: appservices.UserSession,
    key_id: str,
    form: RotateKeyForm,
    error: appservices.CreateOutcomeUnknown,
    asked_at: float,
) -> HttpResponse:
    # The successor may exist without its secret: never linked to the old key, offered for
    # deletion instead; the old key is untouched either way.
    name = form.cleaned_data["new_name"]
    lost = look_for_lost_key(request, session, name, error, asked_at, "rotate", "rotate_key")
    if not lost.listed:
        problem = _(
            "App Services did not answer, so keyadmin cannot tell whether the new key “%(name)s” "
            "was created. Reload the list of keys before you try again."
        )
    elif lost.taken_before:
        form.add_error("new_name", appservices.KeyNameTaken().message)
        return _render_rotate(request, key_id, form)
    elif lost.found is not None:
        problem = _(
            "Key “%(name)s” was created but its secret was lost in transit. It cannot be shown "
            "again: delete it and rotate again. “%(old)s” is unchanged."
        )
    else:
        problem = _(
            "App Services has no key named “%(name)s”: the key was not created. The name is "
            "kept: press “Create the new key” to try again."
        )
    old = _label(_posted_key(request, key_id))
    return _render_rotate(
        request, key_id, form, problem=problem % {"name": name, "old": old}, lost_key=lost.found
    )


@sensitive_post_parameters()
@never_cache
@role_required(OPERATOR)
@appservices_required
@app_role_required(OPERATOR)
@bound_form("rotate")
@upstream_errors(_rotate_failed, "rotate")
@sensitive_variables()
def _rotate(request: HtmxHttpRequest, key_id: str) -> HttpResponse:
    # Like create: the answer is the only place the successor's secret ever exists on our side.
    session = _manageable(request)
    form = RotateKeyForm(request.POST)
    if not form.is_valid():
        return _render_rotate(request, key_id, form)
    resubmit.claim(request, form.cleaned_data["new_name"])
    asked_at = _clock()
    try:
        new_key = session.create_api_key(form.cleaned_data["new_name"])
    except appservices.CreateOutcomeUnknown as error:
        return _lost_rotate(request, session, key_id, form, error, asked_at)
    resubmit.settle(request, key_id=new_key.id)
    notes.link_rotation(request.connection, key_id, new_key.id)
    audit.record(
        request,
        "rotate",
        audit.OK,
        key_id=new_key.id,
        key_name=new_key.name,
        detail=f"successor of {key_id}",
        changes={"key": [key_id, new_key.id]},
    )
    old, new = notes.annotate(
        request.connection,
        [
            _posted_key(request, key_id),
            appservices.ApiKey(id=new_key.id, name=new_key.name, disabled=new_key.disabled),
        ],
    )
    context = {"key": new_key, "row_key": new, "rotated_from": old}
    context = _bound(request, context)
    if request.htmx:
        return render(request, "keyadmin/rotate-answer.html", context)
    return render(request, "keyadmin/create.html", context)
