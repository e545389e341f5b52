"""The keys page and the actions on a key: list, create, enable, disable, delete, detail.

Every action costs exactly one App Services request. Enable, disable and delete answer with no
body, so the row is rendered from what the request just established, never re-read. The one
exception is a create whose answer was lost: one list request then says whether the key exists.

Every state-changing form is bound to the App Services user and app it was rendered for
(`bound_form`): a stale one is refused before any request. The audit trail gets the key id from
the URL and a key name only when App Services said it in this request; the name a row form
posts back is shown in the re-rendered row and never stored.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from django.views.decorators.gzip import gzip_page
from django.views.decorators.http import require_GET, require_POST
from django.views.decorators.vary import vary_on_headers

from keyadmin import appservices, audit
from keyadmin.appservices import MAX_KEYS_PER_USER, ApiKey
from keyadmin.keys import batch, notes, resubmit
from keyadmin.keys.forms import CreateKeyForm, KeyFilterForm, posted_key_name
from keyadmin.keys.guards import (
    NAME_ERRORS,
    HtmxHttpRequest,
    StaleForm,
    answer_status,
    app_role_required,
    appservices_required,
    bound_form,
    check_binding,
    form_binding,
    page_status,
    upstream_errors,
)
from keyadmin.sso.access import role_required
from keyadmin.sso.roles import OPERATOR, VIEWER, roles_of

KEYS = "keyadmin/keys.html"

logger = logging.getLogger("keyadmin.views")

# A key with the asked name whose id says it was made this many seconds before our create was
# sent is not ours: the name was taken already (a lost 409 looks like any lost answer). Small on
# purpose: too small only leaves an orphan unnamed, too large would offer to delete a live key.
ORPHAN_CLOCK_SLACK = 5

# A "name taken" answer about a key this young, for a form this session already sent with the
# same name (keys/resubmit.py), means the same form went out twice (a double submit without
# JavaScript, or a reload while it worked): the first answer, with the secret, was dropped by the
# browser. Large enough for a slow create, small enough to be about this form.
TWIN_SECONDS = 60


def _manageable(request: HtmxHttpRequest) -> appservices.UserSession:
    """The user's key session, or `NotAllowed` (without asking App Services) when it has none."""
    if not request.connection.can_manage_keys:
        raise appservices.NotAllowed()
    return request.connection.client()


def _posted_key(request: HtmxHttpRequest, key_id: str, disabled: bool | None = None) -> ApiKey:
    """The key a row form is about, from the state the page showed (row forms post it back).

    For display only: its name is the client's word, never audited.
    """
    if disabled is None:
        disabled = request.POST.get("disabled") == "true"
    return ApiKey(id=key_id, name=posted_key_name(request.POST.get("name")), disabled=disabled)


def _label(key: ApiKey) -> str:
    return key.name or key.id


def _noted(request: HtmxHttpRequest, key: ApiKey) -> notes.NotedKey:
    """One row's key with its note and provenance (one query, none upstream)."""
    return notes.annotate_one(request.connection, key)


def with_rotate_nonce(request: HtmxHttpRequest, key: notes.NotedKey) -> notes.NotedKey:
    """`key` with a fresh nonce for its rotate form: a rotate sent twice is told from a name
    someone else took, as a create is."""
    return replace(key, rotate_nonce=resubmit.issue(request))


def _create_form(request: HtmxHttpRequest) -> CreateKeyForm:
    """An empty create form, its review date one review period away (the app's), and while
    acting for a customer, the act-for ticket."""
    connection = request.connection
    initial = {"review_by": notes.default_review_by(connection.app)}
    if connection.acting is not None:
        initial["ticket"] = connection.acting.ticket
    return CreateKeyForm(initial=initial)


def _owner(request: HtmxHttpRequest) -> dict[str, str]:
    """Whose keys an answer is about: every notice and the secret panel name them."""
    app = request.connection.app
    # Production in words in every notice, not only in the badge beside the heading.
    name = _("%(app)s, production") % {"app": app.name} if app.is_production else app.name
    return {"who": request.connection.label, "app": name, "app_config": app}


def _bound(request: HtmxHttpRequest, context: dict, *, create_form: bool = False) -> dict:
    """`context` with what the forms it renders post back: the binding, the create nonce."""
    context["form_binding"] = form_binding(request.connection)
    context["owner"] = _owner(request)
    if create_form:
        context["create_nonce"] = resubmit.issue(request)
    return context


# --- list ---


def _render_keys(
    request: HtmxHttpRequest,
    keys: list[ApiKey] | None,
    error=None,
    status: int = 200,
    *,
    stale: StaleForm | None = None,
) -> HttpResponse:
    # Every key is rendered, filtered-out ones `hidden`: our JS filters and recounts in place and
    # checks new names against all of them; without JS the server filter alone decides.
    keys, missing_notes = (
        notes.annotate_listed(request.connection, keys) if keys is not None else ([], [])
    )
    filter_form = KeyFilterForm(request.GET or None)
    hidden_ids = filter_form.hidden_ids(keys)
    reviews = [key.review for key in keys]
    context = {
        "keys": keys,
        "hidden_ids": hidden_ids,
        "no_match": bool(keys) and len(hidden_ids) == len(keys),
        "filter_form": filter_form,
        "reviews_overdue": reviews.count("overdue"),
        "reviews_due": reviews.count("due"),
        "missing_notes": missing_notes,
        "list_error": error,
        "stale": stale,
        "max_keys": MAX_KEYS_PER_USER,
        "latest_lockdown": batch.latest_lockdown(request.connection, [key.id for key in keys]),
    }
    # The htmx fragment is the table alone: no create form to build, nor a nonce to issue for it.
    if not request.htmx:
        context["create_form"] = _create_form(request)
    with_create_form = (
        not request.htmx
        and request.connection.can_manage_keys
        and OPERATOR in roles_of(request.user)
    )
    context = _bound(request, context, create_form=with_create_form)
    template = f"{KEYS}#key-table" if request.htmx else KEYS
    return render(request, template, context, status=status)


def _keys_failed(request: HtmxHttpRequest, error: appservices.AppServicesError) -> HttpResponse:
    return _render_keys(request, None, error, status=answer_status(request, page_status(error)))


@require_GET
@role_required(VIEWER)
@appservices_required
@app_role_required(VIEWER)
@gzip_page  # the first load's largest part; it holds no secret (BREACH), only masked CSRF tokens
@vary_on_headers("HX-Request")
@upstream_errors(_keys_failed)
def key_list(request: HtmxHttpRequest) -> HttpResponse:
    # The table alone goes into a page already showing whose keys these are: it must be that
    # user's (no request upstream otherwise). A full page says for itself whose keys it shows.
    if request.htmx and not request.htmx.history_restore_request:
        stale = check_binding(request)
        if stale is not None:
            return _render_keys(request, None, stale=stale)
    if not request.connection.can_manage_keys:
        return _render_keys(request, None)
    return _render_keys(request, request.connection.client().list_api_keys())


# --- create ---


def _render_create_form(
    request: HtmxHttpRequest,
    form: CreateKeyForm,
    error=None,
    status: int = 200,
    *,
    notice: str = "",
    lost_key: ApiKey | None = None,
    twin: bool = False,
) -> HttpResponse:
    # A lost create answer is never retried blindly. `lost_key`: the list shows the key, whose
    # secret is gone; `notice`: the list shows no such key (the form may be sent again). Neither
    # (the list could not be read either): the key may exist, so offer to re-read the list.
    outcome_unknown = isinstance(error, appservices.CreateOutcomeUnknown) and not notice
    transient = isinstance(error, appservices.UpstreamUnavailable | appservices.UpstreamGarbage)
    context = {
        "create_form": form,
        "create_error": error,
        "create_notice": notice,
        "lost_key": lost_key,
        "lost_twin": twin,
        "outcome_unknown": outcome_unknown,
        "can_retry": transient and not outcome_unknown,
        "max_keys": MAX_KEYS_PER_USER,
    }
    context = _bound(request, context, create_form=True)
    if request.htmx:
        template = f"{KEYS}#create-lost" if lost_key else f"{KEYS}#create-form"
        return render(request, template, context)
    return render(request, "keyadmin/create.html", context, status=status)


def _clock() -> float:
    return time.time()


@dataclass(frozen=True)
class LostCreate:
    """What one list request said about a create whose answer was lost."""

    listed: bool  # False: the list failed too, so the key may exist
    found: ApiKey | None = None  # a key of the asked name made by this request: secret lost
    taken_before: bool = False  # the name belonged to an older key: this request made nothing


def look_for_lost_key(
    request: HtmxHttpRequest,
    session: appservices.UserSession,
    name: str,
    error: appservices.CreateOutcomeUnknown,
    asked_at: float,
    action: str = "create",
    view: str = "create_key",
) -> LostCreate:
    """The create went out but no usable answer came back: find out with ONE list request.

    keyadmin knows the name it asked for. If a key of that name exists, App Services made it and
    its secret is lost for good. Never a second create. Audited as a failed `action`.
    """
    try:
        found = next((key for key in session.list_api_keys() if key.name == name), None)
    except appservices.AppServicesError as list_error:
        logger.warning(
            "%s: %s (status %s, %s); the list to look for the key failed: %s (status %s)",
            view,
            type(error).__name__,
            error.status,
            error.path,
            type(list_error).__name__,
            list_error.status,
        )
        audit.record_error(request, action, error)
        return LostCreate(listed=False)
    # A key older than this request had the name already: this request made nothing.
    taken_before = found is not None and found.created.timestamp() < asked_at - ORPHAN_CLOCK_SLACK
    if taken_before:
        outcome = "name taken before"
    elif found is not None:
        outcome = "key exists, secret lost"
    else:
        outcome = "no key with that name"
    logger.warning(
        "%s: %s (status %s, %s); one list request: %s",
        view,
        type(error).__name__,
        error.status,
        error.path,
        outcome,
    )
    audit.record(
        request,
        action,
        audit.FAILED,
        status=error.status,
        key_id=found.id if found else None,
        key_name=found.name if found else None,  # as the list said it
        detail=f"{type(error).__name__}: {outcome}",
    )
    return LostCreate(listed=True, found=None if taken_before else found, taken_before=taken_before)


def _lost_create(
    request: HtmxHttpRequest,
    session: appservices.UserSession,
    form: CreateKeyForm,
    error: appservices.CreateOutcomeUnknown,
    asked_at: float,
) -> HttpResponse:
    """A lost create answer: the key exists (offer to delete it), does not (the form can be sent
    again), or the list failed as well (keep saying the key may exist)."""
    name = form.cleaned_data["name"]
    lost = look_for_lost_key(request, session, name, error, asked_at)
    if not lost.listed:
        return _render_create_form(request, form, error)
    found = lost.found
    if lost.taken_before:
        form.add_error("name", appservices.KeyNameTaken().message)
        return _render_create_form(request, form)
    if found is not None:
        return _render_create_form(request, form, lost_key=found)
    if error.status is None:
        # No answer at all (timeout, connection lost): the request may still be on its way.
        notice = _(
            "App Services has no key named “%(name)s” (checked just now), so it was most likely "
            "not created. The name is kept: press “Create key” to try again."
        )
    else:
        notice = _(
            "App Services has no key named “%(name)s”: the key was not created. "
            "The name is kept: press “Create key” to try again."
        )
    return _render_create_form(request, form, error, notice=notice % {"name": name})


def just_made_twin(request: HtmxHttpRequest, name: str) -> ApiKey | None:
    """The key this very form made when it was sent before, if there is one (one list request).

    Only for a form this session sent earlier with the same name (`resubmit`), and only a key
    made since that sending and within TWIN_SECONDS; when the earlier sending's answer was
    recorded, only the key it made.
    """
    earlier = resubmit.earlier_sending(request, name)
    if earlier is None or earlier.made_nothing:
        return None
    try:
        keys = request.connection.client().list_api_keys()
    except appservices.AppServicesError:
        return None

    def is_twin(key: ApiKey) -> bool:
        made = key.created.timestamp()
        return (
            key.name == name
            and (earlier.key_id is None or key.id == earlier.key_id)
            and made >= earlier.at - ORPHAN_CLOCK_SLACK
            and _clock() - made < TWIN_SECONDS
        )

    return next((key for key in keys if is_twin(key)), None)


def _create_failed(request: HtmxHttpRequest, error: appservices.AppServicesError) -> HttpResponse:
    form = CreateKeyForm(request.POST)
    form.is_valid()
    # A definite answer: this sending made nothing, so a later sending's "name taken" is not
    # about a key of this form's.
    resubmit.settle(request, made_nothing=True)
    if isinstance(error, appservices.KeyNameTaken) and "name" in form.cleaned_data:
        twin = just_made_twin(request, form.cleaned_data["name"])
        if twin is not None:
            return _render_create_form(request, form, lost_key=twin, twin=True)
    if isinstance(error, NAME_ERRORS):
        form.add_error("name", error.message)
        return _render_create_form(request, form, status=page_status(error))
    return _render_create_form(request, form, error, status=page_status(error))


@sensitive_post_parameters()
@require_POST
@never_cache
@role_required(OPERATOR)
@appservices_required
@app_role_required(OPERATOR)
@bound_form("create")
@upstream_errors(_create_failed, "create")
@sensitive_variables()
def create_key(request: HtmxHttpRequest) -> HttpResponse:
    # The answer is the only place the secret ever exists on our side: no redirect, no session,
    # no message; the full page (no JS) shows it directly instead of Post/Redirect/Get.
    session = _manageable(request)
    form = CreateKeyForm(request.POST)
    if not form.is_valid():
        return _render_create_form(request, form)
    resubmit.claim(request, form.cleaned_data["name"])
    asked_at = _clock()
    try:
        new_key = session.create_api_key(form.cleaned_data["name"])
    except appservices.CreateOutcomeUnknown as error:
        return _lost_create(request, session, form, error, asked_at)
    resubmit.settle(request, key_id=new_key.id)
    audit.record(request, "create", audit.OK, key_id=new_key.id, key_name=new_key.name)
    if form.has_note():
        change = notes.save_note(request.connection, new_key.id, form.note_values())
        audit.record(request, "note", audit.OK, key_id=new_key.id, changes=change.changes)
    context = {
        "key": new_key,
        "row_key": _noted(request, new_key),
        "create_form": _create_form(request),
        "max_keys": MAX_KEYS_PER_USER,
    }
    context = _bound(request, context, create_form=True)
    if request.htmx:
        return render(request, f"{KEYS}#created", context)
    return render(request, "keyadmin/create.html", context)


# --- enable, disable, delete ---


def _row_failed(
    request: HtmxHttpRequest, error: appservices.AppServicesError, key_id: str
) -> HttpResponse:
    key = _posted_key(request, key_id)
    if not request.htmx:
        problem = {"key": _label(key), "problem": error.message, **_owner(request)}
        messages.error(request, _("Key “%(key)s” of %(who)s (app %(app)s): %(problem)s") % problem)
        return redirect("keyadmin:keys")
    if isinstance(error, appservices.KeyNotFound):
        notice = _(
            "Key “%(key)s” of %(who)s (app %(app)s) no longer exists (deleted elsewhere?), "
            "so it left the list."
        )
        return render(
            request,
            f"{KEYS}#row-gone",
            {"notice": notice % {"key": _label(key), **_owner(request)}, "notice_level": "warning"},
        )
    action = "delete" if request.resolver_match.url_name == "key-delete" else "toggle"
    context = _bound(request, {"key": _noted(request, key), "row_error": error, "retry": action})
    return render(request, f"{KEYS}#key-row", context)


def _set_disabled(request: HtmxHttpRequest, key_id: str, *, disabled: bool) -> HttpResponse:
    session = _manageable(request)
    if disabled:
        session.disable_api_key(key_id)
        notice = _("Key “%(key)s” of %(who)s (app %(app)s) disabled: it can no longer sign in.")
    else:
        session.enable_api_key(key_id)
        notice = _("Key “%(key)s” of %(who)s (app %(app)s) enabled: it can sign in again.")
    key = _noted(request, _posted_key(request, key_id, disabled=disabled))
    action = "disable" if disabled else "enable"
    audit.record(request, action, audit.OK, key_id=key_id)
    notice %= {"key": _label(key), **_owner(request)}
    if not request.htmx:
        messages.success(request, notice)
        return redirect("keyadmin:keys")
    context = _bound(request, {"key": key, "notice": notice, "focus": True})
    return render(request, f"{KEYS}#row-changed", context)


@require_POST
@role_required(OPERATOR)
@appservices_required
@app_role_required(OPERATOR)
@bound_form("enable")
@upstream_errors(_row_failed, "enable")
def enable_key(request: HtmxHttpRequest, key_id: str) -> HttpResponse:
    return _set_disabled(request, key_id, disabled=False)


@require_POST
@role_required(OPERATOR)
@appservices_required
@app_role_required(OPERATOR)
@bound_form("disable")
@upstream_errors(_row_failed, "disable")
def disable_key(request: HtmxHttpRequest, key_id: str) -> HttpResponse:
    return _set_disabled(request, key_id, disabled=True)


@require_POST
@role_required(OPERATOR)
@appservices_required
@app_role_required(OPERATOR)
@bound_form("delete")
@upstream_errors(_row_failed, "delete")
def delete_key(request: HtmxHttpRequest, key_id: str) -> HttpResponse:
    session = _manageable(request)
    key = _posted_key(request, key_id)
    if request.POST.get("confirm") != "1":
        # Without JavaScript there is no dialog: this page asks, and its form posts confirm=1.
        return render(request, "keyadmin/delete-confirm.html", _bound(request, {"key": key}))
    session.delete_api_key(key_id)
    audit.record(request, "delete", audit.OK, key_id=key_id)
    notes.forget(request.connection, key_id)
    notice = _("Key “%(key)s” of %(who)s (app %(app)s) deleted.") % {
        "key": _label(key),
        **_owner(request),
    }
    if not request.htmx:
        messages.success(request, notice)
        return redirect("keyadmin:keys")
    return render(request, f"{KEYS}#row-gone", {"notice": notice})


# --- detail ---


def _detail_failed(
    request: HtmxHttpRequest, error: appservices.AppServicesError, key_id: str
) -> HttpResponse:
    # Retrying cannot bring back a missing key or change what this session may do.
    can_retry = not isinstance(error, appservices.KeyNotFound | appservices.NotAllowed)
    context = {"key_id": key_id, "error": error, "can_retry": can_retry, "owner": _owner(request)}
    status = answer_status(request, page_status(error))
    return render(request, "keyadmin/key-detail.html", context, status=status)


@require_GET
@role_required(VIEWER)
@appservices_required
@app_role_required(VIEWER)
@upstream_errors(_detail_failed)
def key_detail(request: HtmxHttpRequest, key_id: str) -> HttpResponse:
    key = _noted(request, _manageable(request).get_api_key(key_id))
    context = {"key_id": key_id, "key": key, "owner": _owner(request)}
    return render(request, "keyadmin/key-detail.html", context)
