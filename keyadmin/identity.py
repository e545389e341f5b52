"""Who the staff member is. One configured source (KEYADMIN_SSO), failing closed.

The sources live in `keyadmin.sso` (docs/sso.md): `remote-user` and `assertion` identify every
request in `keyadmin.sso.middleware`, `oidc` runs its own login, and `dev` is the development
sign-in below, refused unless DEBUG is on. With no mode configured nobody gets in.

Views use `staff_required`, `sign_out`, `signout_url` and `display_name`; the development sign-in
view uses `dev_sign_in_enabled` and `sign_in_dev`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from functools import wraps
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth import login, logout
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.module_loading import import_string
from django.utils.translation import gettext as _
from django_htmx.http import HttpResponseClientRedirect

from keyadmin import audit, connection
from keyadmin.roles import ROLES
from keyadmin.sso import bridge
from keyadmin.sso.backends import STAFF_BACKEND
from keyadmin.sso.sources import DEV_ISSUER, Identity
from keyadmin.sso.staff import provision, staff_of

logger = logging.getLogger(__name__)

DEV_USERNAME_PREFIX = "dev:"


def dev_sign_in_enabled() -> bool:
    return settings.DEBUG and settings.KEYADMIN_SSO == "dev"


def sign_in_dev(request: HttpRequest, name: str, roles: Iterable[str] | None = None) -> None:
    """Sign in as `name` with the chosen roles (all of them by default); DEBUG only."""
    if not dev_sign_in_enabled():
        raise PermissionDenied(_("The development sign-in is off."))
    name = " ".join(name.split())[:100]
    chosen = ROLES if roles is None else tuple(role for role in ROLES if role in set(roles))
    user = provision(
        Identity(
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


def after_sign_in(request: HttpRequest, user) -> None:
    """A new staff session exists: audit it, then connect App Services if the bridge is on."""
    audit.record(request, "signin", audit.OK, detail=f"KEYADMIN_SSO={settings.KEYADMIN_SSO}")
    staff = staff_of(user)
    if bridge.enabled() and staff is not None:
        bridge.sign_in(request, staff.subject)


def _drop_appservices(request: HttpRequest) -> None:
    if connection.SESSION_KEY in request.session:
        connection.disconnect(request)  # revokes the refresh token upstream, best effort
        audit.record(request, "appservices-signout", audit.OK)


def sign_out(request: HttpRequest) -> None:
    """End the keyadmin session: App Services token revoked, session flushed, event audited.

    Call `signout_url` afterwards for where to send the browser (the SSO's own sign-out): it was
    worked out here, before the session that it may need was flushed.
    """
    request.keyadmin_signout_url = signout_url(request)
    if request.user.is_authenticated:
        _drop_appservices(request)
        audit.record(request, "signout", audit.OK)
    logout(request)  # flushes the session, App Services tokens included


def end_session(request: HttpRequest, reason: str) -> None:
    """End a session the SSO no longer vouches for (subject changed or gone, group removed)."""
    if request.user.is_authenticated:
        _drop_appservices(request)
        audit.record(request, "signout", audit.OK, detail=reason)
        logout(request)


def signout_url(request: HttpRequest) -> str | None:
    """Where to send the browser after `sign_out`: the SSO's sign-out, or None (stay here)."""
    if hasattr(request, "keyadmin_signout_url"):
        return request.keyadmin_signout_url
    mode = settings.KEYADMIN_SSO
    if mode == "oidc":
        from keyadmin.sso.oidc import oidc_setting

        return import_string(oidc_setting("OIDC_OP_LOGOUT_URL_METHOD"))(request)
    if mode in ("remote-user", "assertion"):
        return settings.KEYADMIN_SSO_SIGNOUT_URL or None
    return None


def signin_url(request: HttpRequest, next_url: str = "") -> str | None:
    """Where a signed-out staff member starts signing in; None when keyadmin cannot start it."""
    allowed = next_url and url_has_allowed_host_and_scheme(
        next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    query = f"?{urlencode({'next': next_url})}" if allowed else ""
    if dev_sign_in_enabled():
        return reverse("keyadmin:staff-signin") + query
    if settings.KEYADMIN_SSO == "oidc":
        try:
            return reverse("sso:oidc-authenticate") + query
        except NoReverseMatch:
            logger.error("KEYADMIN_SSO=oidc but keyadmin.urls_sso is not included in the URLs")
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


SSO_PROBLEMS = {
    "no-identity": 401,
    "rejected": 401,
    "not-staff": 403,
    "oidc-failed": 403,
}


def sso_error(request: HttpRequest, problem: str, status: int | None = None) -> HttpResponse:
    """The page for a sign-in that failed closed; no session exists after it."""
    response = render(
        request,
        "keyadmin/sso-error.html",
        {"problem": problem, "request_id": getattr(request, "request_id", "")},
        status=status or SSO_PROBLEMS.get(problem, 403),
    )
    if request.headers.get("HX-Request") == "true":  # (may run before HtmxMiddleware)
        response["HX-Refresh"] = "true"  # htmx does not swap errors: show this page whole
    return response


def _return_to(request: HttpRequest) -> str:
    if getattr(request, "htmx", False):
        return request.htmx.current_url_abs_path or ""
    return request.get_full_path() if request.method == "GET" else ""


def signin_needed(request: HttpRequest) -> HttpResponse:
    """The answer to a signed-out request for a staff page."""
    if settings.KEYADMIN_SSO in ("remote-user", "assertion"):
        # The proxy or front server signs people in; it sent nobody this time.
        return sso_error(request, "no-identity")
    if dev_sign_in_enabled():
        url = reverse("keyadmin:staff-signin")
    elif settings.KEYADMIN_SSO == "oidc":
        url = signin_url(request, _return_to(request))
    else:
        url = None
    if url is None:
        return render(request, "keyadmin/no-signin.html", status=403)
    if getattr(request, "htmx", False):
        return HttpResponseClientRedirect(url)
    return redirect(url)


def staff_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if request.user.is_authenticated:
            return view(request, *args, **kwargs)
        return signin_needed(request)

    return wrapper
