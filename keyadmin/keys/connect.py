"""Connecting the staff session to an App Services user, and disconnecting it."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from django.views.decorators.http import require_http_methods, require_POST

from keyadmin import appservices, audit, throttle
from keyadmin.appservices.connection import connect, disconnect
from keyadmin.keys.forms import SIGN_IN_FORMS, EmailPasswordForm
from keyadmin.keys.guards import HtmxHttpRequest, upstream_errors
from keyadmin.sso import bridge
from keyadmin.sso.access import role_required, staff_required
from keyadmin.sso.roles import VIEWER


def _render_signin(request: HtmxHttpRequest, bound=None, error=None) -> HttpResponse:
    forms = {
        provider: bound if bound is not None and bound.provider == provider else form_class()
        for provider, form_class in SIGN_IN_FORMS.items()
    }
    context = {
        "email_form": forms["local-userpass"],
        "api_key_form": forms["api-key"],
        "anonymous_form": forms["anon-user"],
        # Keep "other ways" open when that is where the answer is.
        "other_open": bound is not None and bound.provider != EmailPasswordForm.provider,
        "signin_error": error,
    }
    return render(request, "keyadmin/appservices-signin.html", context)


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
    if not form.is_valid():
        return _render_signin(request, form)
    attempt = throttle.appservices_signin(request, form.provider, form.credentials())
    try:
        throttle.begin(request, attempt)
    except throttle.Throttled as refused:
        return _throttled(request, form, refused)
    try:
        connection = connect(request, form.provider, form.credentials())
    except (appservices.UpstreamUnavailable, appservices.HostNotAllowed):
        # App Services did not judge the credentials. Any other error stays counted: a refusal
        # worded differently must not turn into a way to guess without limit.
        throttle.abandoned(attempt)
        raise
    throttle.succeeded(attempt)
    audit.record(request, "appservices-signin", audit.OK, detail=form.provider)
    messages.success(
        request, _("Connected to App Services as %(who)s.") % {"who": connection.label}
    )
    return redirect("keyadmin:keys")


@require_POST
@staff_required
def appservices_signout(request: HtmxHttpRequest) -> HttpResponse:
    audit.record(request, "appservices-signout", audit.OK)  # while the user id is still known
    disconnect(request)
    messages.info(request, _("Disconnected from App Services. Connect to another user below."))
    return redirect("keyadmin:appservices-signin")
