"""Connecting the staff session to an App Services user, acting for a customer, disconnecting.

Staff pick the app (a GET `?app=<key>` when several are configured; every sign-in form posts it
back). Acting for a customer (keyadmin.sso.actfor) starts from its own form here: every check is
made before anything goes upstream, and starting costs exactly one upstream request, the
custom-token login.
"""

from __future__ import annotations

import secrets
import time

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from django.views.decorators.http import require_http_methods, require_POST

from keyadmin import appservices, audit, throttle
from keyadmin.appservices import apps
from keyadmin.appservices.apps import AppConfig
from keyadmin.appservices.connection import (
    Acting,
    connect,
    connect_acting,
    delete_new_user,
    disconnect,
    get_connection,
)
from keyadmin.keys.forms import SIGN_IN_FORMS, ActForForm, EmailPasswordForm
from keyadmin.keys.guards import (
    HtmxHttpRequest,
    acting_about,
    app_role_required,
    appservices_required,
    bound_form,
    check_binding,
    end_acting,
    replaced_acting,
    upstream_errors,
)
from keyadmin.redact import for_audit
from keyadmin.sso import actfor, bridge
from keyadmin.sso.access import role_required, staff_required
from keyadmin.sso.roles import ACT_FOR, VIEWER, roles_of, roles_of_on_app
from keyadmin.sso.staff import staff_of


def _chosen_app(request: HtmxHttpRequest) -> AppConfig | None:
    """The app named by the form or query (`app`), the connected one, else the default."""
    key = request.POST.get("app") if request.method == "POST" else request.GET.get("app")
    if key:
        return apps.app(key)
    stored = request.session.get("appservices")
    if isinstance(stored, dict):
        found = apps.app(str(stored.get("app_key", ""))) or apps.app_for_id(
            str(stored.get("app_id", ""))
        )
        if found is not None:
            return found
    return apps.default_app()


def _act_for_apps(request: HtmxHttpRequest) -> list[AppConfig]:
    """The apps this staff member may act for customers on (role on the app, enabled there)."""
    if ACT_FOR not in roles_of(request.user):
        return []
    return [
        app
        for app in apps.all_apps()
        if app.act_for_enabled and ACT_FOR in roles_of_on_app(request.user, app)
    ]


def _render_signin(
    request: HtmxHttpRequest,
    bound=None,
    error=None,
    *,
    act_for_error: str | None = None,
    act_for_form: ActForForm | None = None,
    status: int = 200,
) -> HttpResponse:
    chosen = _chosen_app(request) or apps.default_app()
    forms = {
        provider: bound if bound is not None and bound.provider == provider else form_class()
        for provider, form_class in SIGN_IN_FORMS.items()
    }
    act_for_apps = _act_for_apps(request)
    act_for_app = chosen if chosen in act_for_apps else (act_for_apps or [None])[0]
    if act_for_app is not None and request.method == "GET":
        # Where the app lives is looked up while staff fill in the form (once per process and
        # app, no request after that), so that starting costs exactly one request, the login.
        appservices.AppServices(act_for_app).learn_location()
    if act_for_app is not None and (act_for_form is None or act_for_form.app != act_for_app):
        # What was typed stays in the fields, without the form's errors when they are not why.
        posted = request.POST if request.method == "POST" and "customer_id" in request.POST else {}
        typed = {name: posted[name] for name in ActForForm.base_fields if posted.get(name)}
        act_for_form = ActForForm(act_for_app, initial=typed)
    context = {
        "email_form": forms["local-userpass"],
        "api_key_form": forms["api-key"],
        "anonymous_form": forms["anon-user"],
        # Keep "other ways" open when that is where the answer is.
        "other_open": bound is not None and bound.provider != EmailPasswordForm.provider,
        "signin_error": error,
        "apps": apps.all_apps(),
        "chosen_app": chosen,
        "act_for_app": act_for_app,
        "act_for_form": act_for_form,
        "act_for_error": act_for_error,
    }
    return render(request, "keyadmin/appservices-signin.html", context, status=status)


def _throttled(request: HtmxHttpRequest, form, refused: throttle.Throttled) -> HttpResponse:
    if request.htmx:
        return throttle.fragment(request, refused)
    form.add_error(None, throttle.message(refused))
    return throttle.refusal(_render_signin(request, form), refused)


def _bound_signin_form(request: HtmxHttpRequest):
    form_class = SIGN_IN_FORMS.get(request.POST.get("provider", ""), EmailPasswordForm)
    return form_class(request.POST)


def _signin_failed(request: HtmxHttpRequest, error: appservices.AppServicesError) -> HttpResponse:
    form = _bound_signin_form(request)
    form.is_valid()
    if isinstance(error, appservices.BadCredentials):
        form.add_error(None, error.message)
        return _render_signin(request, form)
    return _render_signin(request, form, error)


@sensitive_post_parameters()
@require_http_methods(["GET", "POST"])
@never_cache
@role_required(VIEWER)
@upstream_errors(_signin_failed, "appservices-signin")
@sensitive_variables()
def appservices_signin(request: HtmxHttpRequest) -> HttpResponse:
    if request.method == "GET":
        # After a refused SSO bridge sign-in, say why here, where the staff member lands.
        return _render_signin(request, error=bridge.take_failure(request))
    form = _bound_signin_form(request)
    app = _chosen_app(request)
    if app is None:
        form.add_error(None, _("Choose one of the apps listed."))
        return _render_signin(request, form)
    if VIEWER not in roles_of_on_app(request.user, app):
        audit.record(
            request,
            "denied",
            audit.DENIED,
            detail=f"appservices_signin needs the viewer role on app {app.key}",
            about={"app_id": app.app_id},
        )
        form.add_error(
            None,
            _("You may not work on the app %(app)s: its own groups do not include yours.")
            % {"app": app.name},
        )
        return _render_signin(request, form, status=403)
    if not form.is_valid():
        return _render_signin(request, form)
    attempt = throttle.appservices_signin(request, form.provider, form.credentials())
    try:
        throttle.begin(request, attempt)
    except throttle.Throttled as refused:
        return _throttled(request, form, refused)
    previous = get_connection(request)
    try:
        connection = connect(request, form.provider, form.credentials(), app)
    except (appservices.UpstreamUnavailable, appservices.HostNotAllowed):
        # App Services did not judge the credentials. Any other error stays counted: a refusal
        # worded differently must not turn into a way to guess without limit.
        throttle.abandoned(attempt)
        raise
    throttle.succeeded(attempt)
    replaced_acting(request, previous)
    audit.record(request, "appservices-signin", audit.OK, detail=form.provider)
    messages.success(
        request,
        _("Connected to App Services as %(who)s.") % {"who": connection.label},
    )
    return redirect("keyadmin:keys")


@require_POST
@staff_required
def appservices_signout(request: HtmxHttpRequest) -> HttpResponse:
    if end_acting(request, "disconnected") is None:
        audit.record(request, "appservices-signout", audit.OK)  # while the user id is known
        disconnect(request)
    messages.info(request, _("Disconnected from App Services. Connect to another user below."))
    return redirect("keyadmin:appservices-signin")


# --- acting for a customer ---

# Failures that cannot have made an App Services user: they give their throttle count back.
UNJUDGED = (appservices.UpstreamUnavailable, appservices.HostNotAllowed)


def _act_for_refused(
    request: HtmxHttpRequest,
    app: AppConfig | None,
    reason: str,
    message: str,
    status: int = 200,
    form: ActForForm | None = None,
) -> HttpResponse:
    """A local refusal: recorded with what was typed (cleaned), shown in place; nothing upstream."""
    about = {
        "app_id": app.app_id if app else "",
        "acting_for": for_audit(request.POST.get("customer_id", ""), 255, opaque_too=False),
        "ticket": for_audit(request.POST.get("ticket", ""), 255, opaque_too=False),
    }
    audit.record(request, "act-for-start", audit.DENIED, detail=reason, about=about)
    return _render_signin(request, act_for_error=message, act_for_form=form, status=status)


def _act_for_failed(request: HtmxHttpRequest, error: appservices.AppServicesError) -> HttpResponse:
    if isinstance(error, appservices.SignInTokenRefused):
        message = _(
            "The app's Custom JWT provider refused keyadmin's sign-in token: it is off, or does "
            "not trust keyadmin's key or audience. An administrator must check the provider."
        )
    else:
        message = error.message
    return _render_signin(request, act_for_error=message)


@sensitive_post_parameters()
@require_POST
@never_cache
@role_required(ACT_FOR)
@upstream_errors(_act_for_failed)
@sensitive_variables("token")
def act_for_start(request: HtmxHttpRequest) -> HttpResponse:
    """Check everything, mint one Custom JWT, sign in with it once: one upstream request."""
    app = apps.app(request.POST.get("app", ""))
    if app is None:
        return _act_for_refused(request, None, "unknown-app", _("Choose one of the apps listed."))
    if ACT_FOR not in roles_of_on_app(request.user, app):
        return _act_for_refused(
            request,
            app,
            "act-for-role-on-app",
            _("You may not act for customers on %(app)s: its own groups do not include yours.")
            % {"app": app.name},
            status=403,
        )
    staff = staff_of(request.user)
    form = ActForForm(app, request.POST)
    try:
        actfor.check_enabled(app)
        if not form.is_valid():
            raise form.refusal()
        customer_id = form.cleaned_data["customer_id"]
        ticket = form.cleaned_data["ticket"]
        minutes = form.cleaned_data["minutes"]
        if staff is None:
            raise actfor.ActForRefused("no-staff", _("Sign in again, then retry."))
        try:
            token = actfor.mint_act_for_token(app, customer_id, staff.subject, staff.issuer, ticket)
        except actfor.ActForRefused as refused:
            form.refuse(refused)
            raise
    except actfor.ActForRefused as refused:
        return _act_for_refused(request, app, refused.reason, refused.message, form=form)
    acting = Acting(
        customer_id=customer_id,
        ticket=ticket,
        ends_at=int(time.time()) + minutes * 60,
        staff_subject=staff.subject,
        start_id=secrets.token_urlsafe(12),
    )
    tried = {"app_id": app.app_id, "acting_for": customer_id, "ticket": ticket}
    attempt = throttle.act_for_start(request, app.key, tried)
    try:
        throttle.begin(request, attempt)
    except throttle.Throttled as refused:
        answer = _act_for_refused(request, app, "throttled", throttle.act_for_message(refused))
        return throttle.refusal(answer, refused)
    previous = get_connection(request)
    try:
        connection = connect_acting(request, app, token, acting)
    except appservices.AppServicesError as error:
        if isinstance(error, UNJUDGED):
            throttle.abandoned(attempt)
        # The row names the app and customer tried, not the connection (if any) still kept.
        detail = type(error).__name__
        audit.record(
            request, "act-for-start", audit.FAILED, status=error.status, detail=detail, about=tried
        )
        raise
    replaced_acting(request, previous)
    detail = f"{minutes} min"
    if connection.acting.new_user:
        detail += "; new user created by this sign-in"
    audit.record(request, "act-for-start", audit.OK, detail=detail)
    if connection.acting.new_user:
        messages.warning(
            request,
            _(
                "No App Services user had this id until now: check the id; a new, empty user "
                "was created."
            ),
        )
    else:
        messages.success(
            request,
            _("Acting for %(customer)s in %(app)s.") % {"customer": customer_id, "app": app.name},
        )
    return redirect("keyadmin:keys")


@require_POST
@staff_required
def act_for_end(request: HtmxHttpRequest) -> HttpResponse:
    """End now: revoke the customer's refresh token upstream, forget it, one audit row."""
    from_session = get_connection(request)
    if from_session is None or from_session.acting is None:
        messages.info(request, _("You were not acting for a customer."))
        return redirect("keyadmin:appservices-signin")
    request.connection = from_session
    stale = check_binding(request)
    if stale is not None:
        messages.warning(request, stale.message)
        return redirect("keyadmin:appservices-signin")
    end_acting(request, "ended now")
    messages.info(
        request,
        _("You no longer act for %(customer)s: their session was signed out of App Services.")
        % {"customer": from_session.acting.customer_id},
    )
    return redirect("keyadmin:appservices-signin")


def _delete_user_failed(
    request: HtmxHttpRequest, error: appservices.AppServicesError
) -> HttpResponse:
    messages.error(request, error.message)
    return redirect("keyadmin:keys")


def _delete_user_refused(request: HtmxHttpRequest, reason: str, message: str) -> HttpResponse:
    audit.record(request, "delete-user", audit.DENIED, detail=reason)
    messages.warning(request, message)
    return redirect("keyadmin:keys")


@require_POST
@never_cache
@role_required(ACT_FOR)
@appservices_required
@app_role_required(ACT_FOR)
@bound_form("delete-user")
@upstream_errors(_delete_user_failed, "delete-user")
def act_for_delete_user(request: HtmxHttpRequest) -> HttpResponse:
    """Delete the empty user a mistyped customer id made, then stop acting: one request."""
    connection = request.connection
    if not connection.may_delete_user:
        return _delete_user_refused(
            request,
            "not-a-new-user",
            _(
                "keyadmin deletes only the empty user that this very sign-in created, on an app "
                "that allows it. Nothing was deleted; use End now instead."
            ),
        )
    if audit.keys_made_for(connection.app_id, connection.user_id):
        return _delete_user_refused(
            request,
            "keys-created",
            _(
                "A key was created for this user through keyadmin, so it is not an empty user. "
                "Nothing was deleted; use End now instead."
            ),
        )
    delete_new_user(request, connection)
    about = acting_about(connection)
    audit.record(request, "delete-user", audit.OK, detail="empty user deleted", about=about)
    audit.record(request, "act-for-end", audit.OK, detail="empty user deleted", about=about)
    messages.success(
        request,
        _(
            "The empty App Services user made for %(customer)s in %(app)s was deleted, and you "
            "no longer act for anyone. Check the customer id, then start again."
        )
        % {"customer": connection.acting.customer_id, "app": connection.app.name},
    )
    return redirect("keyadmin:appservices-signin")
