"""The guards of the dashboard's views: a connected App Services user, failures answered in place.

Status contract: an htmx fragment is always HTTP 200, errors included, because htmx 2 does not
swap 4xx/5xx answers. A full page (no JavaScript) that shows a problem in place is 200 too (a
re-rendered form, App Services down); only a missing key (404), a session that may not see
keys (403) and a form rendered for another App Services user (409) get an error status, as do
unknown paths (404) and wrong methods (405).

Form binding: every state-changing form carries `form_binding(connection)`, a token signed with
SECRET_KEY naming the App Services app and user it was rendered for (and their label, for the
message). `bound_form` refuses a POST whose token is missing, unreadable or names another user
or app than the current connection: a stale tab, after "Switch user" in another tab. Signed
rather than plain hidden fields so that "rendered for" is something keyadmin said, fit to show
and to audit, and so one field can grow new claims (`binding_claims`) without touching a form.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import wraps

from django.contrib import messages
from django.core import signing
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django_htmx.http import HttpResponseClientRedirect, HttpResponseClientRefresh
from django_htmx.middleware import HtmxDetails

from keyadmin import appservices, audit
from keyadmin.appservices.connection import (
    SESSION_KEY,
    Connection,
    acting_about,
    app_of_session,
    disconnect,
    end_orphaned_acting,
    forget,
    get_connection,
)
from keyadmin.keys.forms import posted_key_name
from keyadmin.sso import bridge, cookie_check
from keyadmin.sso.access import session_cookie_needed
from keyadmin.sso.roles import ACT_FOR, roles_of_on_app
from keyadmin.sso.session import is_deferred, open_on_return

logger = logging.getLogger("keyadmin.views")


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails
    connection: Connection


Failure = Callable[..., HttpResponse]

# Errors that are about the name typed into the create form, so the field itself says so.
NAME_ERRORS = (appservices.InvalidKeyName, appservices.KeyNameTaken, appservices.KeyLimitReached)


def upstream_errors(
    on_failure: Failure, audit_action: str | None = None
) -> Callable[[Failure], Failure]:
    """Answer an `AppServicesError` in place instead of a 500 page.

    A 401 ends the App Services session (back to its sign-in, `HX-Redirect` for htmx); any other
    error goes to `on_failure(request, error, *args, **kwargs)`, which renders it where the action
    was. Logged with the error class and status only: never a token, secret or key name. With
    `audit_action`, every failure is also appended to the audit trail, with the key id from the
    URL and never anything the form posted.
    """

    def decorator(view: Failure) -> Failure:
        @wraps(view)
        def wrapper(request: HtmxHttpRequest, *args, **kwargs) -> HttpResponse:
            try:
                return view(request, *args, **kwargs)
            except appservices.AppServicesError as error:
                if audit_action:
                    audit.record_error(
                        request,
                        audit_action,
                        error,
                        # The id from the URL only: a posted name is the client's claim.
                        key_id=kwargs.get("key_id"),
                    )
                if isinstance(error, appservices.SessionEnded):
                    logger.warning("%s: App Services session ended (401)", view.__name__)
                    return session_ended(request)
                logger.warning(
                    "%s: %s (status %s, %s)",
                    view.__name__,
                    type(error).__name__,
                    error.status,
                    error.path or "before any request",
                )
                return on_failure(request, error, *args, **kwargs)

        return wrapper

    return decorator


def page_status(error: appservices.AppServicesError) -> int:
    """The HTTP status of a full page that reports `error` in place (htmx fragments stay 200).

    The page is still the page asked for, with the problem explained where the action was, so
    it is a 200; only a missing key (404) or a session that may not see keys (403) change that.
    """
    if isinstance(error, appservices.KeyNotFound | appservices.InvalidKeyId):
        return 404
    if isinstance(error, appservices.NotAllowed):
        return 403
    return 200


def answer_status(request: HtmxHttpRequest, status: int) -> int:
    return 200 if request.htmx else status


def signin_redirect(request: HttpRequest) -> HttpResponse:
    url = reverse("keyadmin:appservices-signin")
    if request.htmx:
        return HttpResponseClientRedirect(url)
    return redirect(url)


def session_ended(request: HttpRequest) -> HttpResponse:
    """After a 401 on a key call: the refresh token is dead, so sign in to App Services again."""
    ended = getattr(request, "connection", None) or get_connection(request)
    forget(request)
    if ended is not None and ended.acting is not None:
        # Every way acting ends has its row: a start without an end reads as still open.
        about = acting_about(ended)
        audit.record(
            request, "act-for-end", audit.OK, detail="App Services session ended", about=about
        )
    messages.warning(
        request, _("The App Services session has ended. Sign in to App Services again.")
    )
    return signin_redirect(request)


def app_role_required(role: str) -> Callable[[Failure], Failure]:
    """Only staff holding `role` on the connection's app (its role groups, checked on the server)
    get through; others a 403 page, audited. Goes inside `appservices_required`."""

    def decorator(view: Failure) -> Failure:
        @wraps(view)
        def wrapper(request: HtmxHttpRequest, *args, **kwargs) -> HttpResponse:
            app = request.connection.app
            if role in roles_of_on_app(request.user, app):
                return view(request, *args, **kwargs)
            audit.record(
                request,
                "denied",
                audit.DENIED,
                key_id=kwargs.get("key_id"),
                detail=f"{view.__name__} needs the {role} role on app {app.key}",
            )
            context = {"role": role, "app": app}
            return render(request, "keyadmin/forbidden.html", context, status=403)

        return wrapper

    return decorator


def end_acting(request: HttpRequest, why: str) -> Connection | None:
    """Stop acting for a customer: revoke the refresh token upstream, forget the connection and
    append one act-for-end row (with the customer and ticket). None when not acting."""
    connection = get_connection(request)
    if connection is None or connection.acting is None:
        return None
    disconnect(request)
    audit.record(request, "act-for-end", audit.OK, detail=why, about=acting_about(connection))
    return connection


def replaced_acting(request: HttpRequest, previous: Connection | None) -> None:
    """After a new sign-in replaced an act-for connection (revoked by `connect`): its end row."""
    if previous is not None and previous.acting is not None:
        about = acting_about(previous)
        audit.record(request, "act-for-end", audit.OK, detail="replaced by a sign-in", about=about)


def acting_time_box(get_response: Callable[[HttpRequest], HttpResponse]):
    """Middleware: the first request after an act-for time box ends it, or after the staff
    member lost the act_for role on its app (groups changed, the app's narrowed) or the app
    stopped allowing it (act_for_enabled off) or left the apps file, ends acting
    (revoked upstream, forgotten, audited once) and says why, before any view or page shows
    the customer."""

    def middleware(request: HttpRequest) -> HttpResponse:
        orphaned = end_orphaned_acting(request) if hasattr(request, "session") else None
        if orphaned is not None:
            why = "app no longer configured"
            audit.record(request, "act-for-end", audit.OK, detail=why, about=orphaned)
            messages.warning(
                request,
                _(
                    "The app %(app)s is no longer one keyadmin serves: acting for %(customer)s "
                    "has ended. Their session was signed out of App Services."
                )
                % {"app": orphaned["app_id"], "customer": orphaned["acting_for"]},
            )
            return signin_redirect(request)
        if acting_expired(request):
            ended = end_acting(request, "time box ended")
            if ended is not None:
                messages.warning(
                    request,
                    _(
                        "Your time acting for %(customer)s in %(app)s has ended (at %(time)s). "
                        "Their session was signed out of App Services."
                    )
                    % {
                        "customer": ended.acting.customer_id,
                        "app": ended.app.name,
                        "time": ends_at_text(ended.acting.ends_at),
                    },
                )
                return signin_redirect(request)
        elif withdrawn := act_for_withdrawn(request):
            ended = end_acting(request, withdrawn)
            if ended is not None:
                messages.warning(
                    request,
                    _(
                        "You may no longer act for customers in %(app)s: acting for "
                        "%(customer)s has ended. Their session was signed out of App Services."
                    )
                    % {"customer": ended.acting.customer_id, "app": ended.app.name},
                )
                return signin_redirect(request)
        shorten_to_app_maximum(request)
        return get_response(request)

    return middleware


def shorten_to_app_maximum(request: HttpRequest) -> None:
    """A time box longer than its app now allows (max_act_for_minutes lowered since the start)
    ends that many minutes from now instead: the apps file's word now, not at the start."""
    stored = request.session.get(SESSION_KEY)
    acting = stored.get("acting") if isinstance(stored, dict) else None
    app = app_of_session(request) if isinstance(acting, dict) else None
    if app is None:
        return
    latest = int(time.time()) + app.max_act_for_minutes * 60
    if acting["ends_at"] > latest:
        acting["ends_at"] = latest
        request.session.modified = True


def act_for_withdrawn(request: HttpRequest) -> str:
    """Why the session may no longer act for its customer ("" while it may): the staff member
    no longer holds act_for on the app, or the app no longer allows acting. Roles and the apps
    file are what they say now, not what they said at the start."""
    session = getattr(request, "session", None)
    stored = session.get(SESSION_KEY) if session is not None else None
    if not isinstance(stored, dict) or not isinstance(stored.get("acting"), dict):
        return ""
    app = app_of_session(request)
    if app is not None and not app.act_for_enabled:
        return "act-for turned off on the app"
    if app is None or ACT_FOR not in roles_of_on_app(request.user, app):
        return "act-for role withdrawn"
    return ""


def acting_expired(request: HttpRequest) -> bool:
    session = getattr(request, "session", None)
    stored = session.get(SESSION_KEY) if session is not None else None
    acting = stored.get("acting") if isinstance(stored, dict) else None
    if not isinstance(acting, dict):
        return False
    ends_at = acting.get("ends_at")
    return not isinstance(ends_at, int) or time.time() >= ends_at


def ends_at_text(ends_at: int) -> str:
    """HH:MM of an epoch time, in the page's time zone."""
    moment = datetime.fromtimestamp(ends_at, tz=UTC)
    return timezone.localtime(moment).strftime("%H:%M")


def _session_first(request: HtmxHttpRequest) -> HttpResponse:
    """A request identified by a proxy assertion without a session, which the bridge's App
    Services sign-in needs: open one, signed in when its cookie comes back here (one redirect,
    then one bridge sign-in), or say in place why that cannot work.
    """
    if request.method not in ("GET", "HEAD"):
        # An action cannot be sent again by a redirect (it would come back as a GET). CSRF let
        # it through, so this client keeps cookies: its session had ended. The notice opens one
        # (a session that signs nobody in, keyadmin.sso.middleware), and the page it lands on
        # signs in.
        messages.warning(
            request,
            _("keyadmin had to start your session again, so nothing was changed. Try again."),
        )
        return HttpResponseClientRefresh() if request.htmx else redirect("keyadmin:keys")
    if request.htmx and not request.htmx.history_restore_request:
        # htmx would follow a redirect inside its request and swap whatever came back into a
        # part of the page: the whole page reloads instead, and goes the way below.
        return HttpResponseClientRefresh()
    if cookie_check.came_back_without_cookie(request):
        return session_cookie_needed(request)
    open_on_return(request)
    return cookie_check.redirect_to_self(request)


def appservices_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        connection = get_connection(request)
        if connection is None and bridge.enabled() and is_deferred(request):
            return _session_first(request)
        if connection is None:
            return signin_redirect(request)
        request.connection = connection
        return view(request, *args, **kwargs)

    return wrapper


# --- form binding: which App Services user and app a form was rendered for ---

BINDING_FIELD = "bound_to"
# The same token on the htmx GETs that swap the key table into a page (its Retry, the lost
# create's "Reload the list"): a header, so that it never enters a URL.
BINDING_HEADER = "X-Keyadmin-Bound-To"
_BINDING_SALT = "keyadmin.keys.form-binding"


def binding_claims(connection: Connection) -> dict[str, str]:
    """What a state-changing form acts on; it is accepted only while every claim still holds.

    `acting` is the customer a staff member acts for ("" for any other connection): a form from
    a normal connection is refused while acting and the other way round, even for one user id
    (a staff member's own bridge user and a customer are never confused). While acting,
    `acting_start` names the start too: a page from an earlier session for the same customer
    would otherwise act under this session's ticket.
    """
    if connection.acting is None:
        return {"app": connection.app_id, "user": connection.user_id, "acting": ""}
    return {
        "app": connection.app_id,
        "user": connection.user_id,
        "acting": connection.acting.customer_id,
        "acting_start": connection.acting.start_id,
    }


def form_binding(connection: Connection) -> str:
    """The token every state-changing form rendered for `connection` posts as BINDING_FIELD."""
    # A list of pairs rather than an object: signed JSON objects start "eyJ", like a JWT, which
    # is what the leak checks look for in pages and logs.
    pairs = [*binding_claims(connection).items(), ("label", connection.label)]
    return signing.dumps([list(pair) for pair in pairs], salt=_BINDING_SALT)


def _read_binding(token: str) -> dict | None:
    try:
        pairs = signing.loads(token, salt=_BINDING_SALT) if token else None
    except signing.BadSignature:
        return None
    if not isinstance(pairs, list) or not all(
        isinstance(pair, list) and len(pair) == 2 and all(isinstance(v, str) for v in pair)
        for pair in pairs
    ):
        return None
    return dict(pairs)


@dataclass(frozen=True)
class StaleForm:
    """A form refused: `rendered_for` is its token's content, None if it had none we signed."""

    rendered_for: dict | None
    current: Connection

    @property
    def message(self) -> str:
        now = {"now": self.current.label, "now_app": self.current.app_id}
        if self.rendered_for is None:
            text = _(
                "This form does not say which App Services user it was for, so keyadmin did not "
                "act on it. You are connected as %(now)s (app %(now_app)s). Reload the page."
            )
            return text % now
        then = {
            "then": self.rendered_for.get("label") or self.rendered_for.get("user"),
            "then_app": self.rendered_for.get("app"),
        }
        text = _(
            "This page was for %(then)s (app %(then_app)s); you are now connected as %(now)s "
            "(app %(now_app)s). Nothing was changed. Reload the page."
        )
        return text % {**then, **now}

    @property
    def audit_detail(self) -> str:
        if self.rendered_for is None:
            return "stale form: no valid binding"
        return "stale form: rendered for user {user} in app {app}".format(
            user=self.rendered_for.get("user"), app=self.rendered_for.get("app")
        )


def check_binding(request: HtmxHttpRequest) -> StaleForm | None:
    """None when the form (a POST) or the page fragment asked for (an htmx GET) was rendered
    for the current connection; else why not.

    Fails closed: a missing, altered or foreign-keyed token is refused like a mismatch.
    """
    if request.method == "POST":
        token = request.POST.get(BINDING_FIELD, "")
    else:
        token = request.headers.get(BINDING_HEADER, "")
    bound = _read_binding(token)
    if bound is None:
        return StaleForm(None, request.connection)
    claims = binding_claims(request.connection)
    if all(bound.get(name) == value for name, value in claims.items()):
        return None
    return StaleForm(bound, request.connection)


def _stale_answer(request: HtmxHttpRequest, stale: StaleForm, key_id: str | None) -> HttpResponse:
    # The form is replaced by the reason and a reload link, never by a form bound to the user
    # connected now: under the old page's heading it would act on someone the page does not show.
    # The row's name as the page showed it: display only, like every posted name.
    label = posted_key_name(request.POST.get("name")) or key_id
    context = {"stale": stale, "key_id": key_id, "label": label}
    if request.htmx:
        partial = "stale-row" if key_id else "stale-create"
        return render(request, f"keyadmin/keys.html#{partial}", context)
    return render(request, "keyadmin/stale-form.html", context, status=409)


def bound_form(audit_action: str) -> Callable[[Failure], Failure]:
    """Refuse a stale form before anything else happens: no App Services request, one audit row.

    Goes inside `appservices_required` (it compares with `request.connection`).
    """

    def decorator(view: Failure) -> Failure:
        @wraps(view)
        def wrapper(request: HtmxHttpRequest, *args, **kwargs) -> HttpResponse:
            stale = check_binding(request)
            if stale is None:
                return view(request, *args, **kwargs)
            key_id = kwargs.get("key_id")
            logger.warning("%s: refused a stale form (%s)", view.__name__, stale.audit_detail)
            audit.record(
                request, audit_action, audit.DENIED, key_id=key_id, detail=stale.audit_detail
            )
            return _stale_answer(request, stale, key_id)

        return wrapper

    return decorator
