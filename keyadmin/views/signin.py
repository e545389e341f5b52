"""Signing in and out: the staff member (development stand-in for SSO) and the App Services user."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from django.views.decorators.http import require_http_methods, require_POST

from keyadmin import appservices, audit
from keyadmin.connection import connect, disconnect
from keyadmin.forms import SIGN_IN_FORMS, EmailPasswordForm, StaffSignInForm
from keyadmin.identity import (
    dev_sign_in_enabled,
    sign_in_dev,
    sign_out,
    signout_url,
    staff_required,
)
from keyadmin.roles import VIEWER, role_required
from keyadmin.views.common import HtmxHttpRequest, upstream_errors


def _safe_next(request: HtmxHttpRequest, default: str) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    allowed = url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return target if allowed else default


@require_http_methods(["GET", "POST"])
def staff_signin(request: HtmxHttpRequest) -> HttpResponse:
    if not dev_sign_in_enabled():
        # Fail closed: no configured way to know who the staff member is.
        return render(request, "keyadmin/no-signin.html", status=403)
    form = StaffSignInForm(request.POST if request.method == "POST" else None)
    if form.is_valid():
        # No roles posted (a scripted sign-in) means every role, as sign_in_dev does by default.
        sign_in_dev(request, form.cleaned_data["name"], form.cleaned_data["roles"] or None)
        return redirect(_safe_next(request, "keyadmin:keys"))
    context = {"form": form, "next": _safe_next(request, "")}
    return render(request, "keyadmin/staff-signin.html", context)


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
@staff_required
@role_required(VIEWER)
@upstream_errors(_signin_failed, "appservices-signin")
@sensitive_variables()
def appservices_signin(request: HtmxHttpRequest) -> HttpResponse:
    if request.method == "GET":
        return _render_signin(request)
    form = _bound_signin_form(request)
    if not form.is_valid():
        return _render_signin(request, form)
    connection = connect(request, form.provider, form.credentials())
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


@require_POST
@never_cache
def signout(request: HtmxHttpRequest) -> HttpResponse:
    sign_out(request)  # revokes the App Services refresh token upstream, flushes, audits
    # The company sign-on may still know the staff member: offer its sign-out as a link, so this
    # page (and its Clear-Site-Data) is what the browser gets first.
    context = {"sso_signout_url": signout_url(request)}
    response = render(request, "keyadmin/signed-out.html", context)
    response["Clear-Site-Data"] = '"cache", "storage"'
    return response
