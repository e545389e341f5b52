"""The guards on staff pages: signed in (`staff_required`), holding a role (`role_required`).

A signed-out request gets the configured way in (the development sign-in, the OIDC login, or for
the proxy modes a 401 page: the proxy signs people in), never another source's.

    @role_required(OPERATOR)
    def delete_key(request, key_id): ...
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import wraps
from urllib.parse import urlencode

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils.cache import add_never_cache_headers
from django.utils.http import url_has_allowed_host_and_scheme
from django_htmx.http import HttpResponseClientRedirect, HttpResponseClientRefresh

from keyadmin import audit
from keyadmin.sso import cookie_check, session
from keyadmin.sso.mode import dev_sign_in_enabled
from keyadmin.sso.roles import ROLES, roles_of

logger = logging.getLogger("keyadmin.identity")


def signin_url(request: HttpRequest, next_url: str = "") -> str | None:
    """Where a signed-out staff member starts signing in; None when keyadmin cannot start it."""
    allowed = next_url and url_has_allowed_host_and_scheme(
        next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    query = f"?{urlencode({'next': next_url})}" if allowed else ""
    if dev_sign_in_enabled():
        return reverse("sso:staff-signin") + query
    if settings.KEYADMIN_SSO == "oidc":
        try:
            return reverse("sso:oidc-authenticate") + query
        except NoReverseMatch:
            logger.error("KEYADMIN_SSO=oidc but keyadmin.sso.urls is not included in the URLs")
    return None


SSO_PROBLEMS = {
    "no-identity": 401,
    "rejected": 401,
    "not-staff": 403,
    "oidc-failed": 403,
}


def sso_error(request: HttpRequest, problem: str, status: int | None = None) -> HttpResponse:
    """The page for a sign-in that failed closed; no session exists after it.

    Never stored by any cache: it answers for whoever was, or was not, signed in just now.
    """
    response = render(
        request,
        "keyadmin/sso-error.html",
        {"problem": problem, "request_id": getattr(request, "request_id", "")},
        status=status or SSO_PROBLEMS.get(problem, 403),
    )
    add_never_cache_headers(response)
    if request.htmx:
        response["HX-Refresh"] = "true"  # htmx does not swap errors: show this page whole
    return response


def session_cookie_needed(request: HttpRequest) -> HttpResponse:
    """The page for a client that came back without the session cookie keyadmin just set
    (assertion mode, `cookie_check.came_back_without_cookie`), instead of another session and
    another redirect to the same page. Nothing is stored for it.

    403 like Django's own "CSRF cookie not set": keyadmin knows who this is but will not act
    without a session; a monitor sees a failure rather than the 302 it would follow forever.
    Counted and audited as a refused sign-in, like the other refusals anyone can repeat at will:
    at most one audit row a minute per address, never the assertion.
    """
    logger.warning("assertion: the client came back without its session cookie; answered 403")
    audit.record_sampled(
        request, "signin", audit.DENIED, detail="the session cookie did not come back"
    )
    context = {
        "host": request.get_host(),
        "retry_url": cookie_check.this_page(request),
        "request_id": getattr(request, "request_id", ""),
    }
    response = render(request, "keyadmin/cookie-needed.html", context, status=403)
    add_never_cache_headers(response)
    return response


def sign_in_under_way(request: HttpRequest) -> HttpResponse:
    """The answer to a request that brought back the cookie of a session another request was
    still signing in after `session.WAIT_SECONDS` (`session.finish_sign_in`): "Signing you in",
    a page that reloads itself (its page again) after `session.RELOAD_SECONDS`.

    Not a sign-in of its own: that would be a second App Services login and a second refresh
    token for one session. Not an error page either: nothing is wrong, and the page asked for
    (a tab the browser restored) is what the staff member wants. Not a redirect to it: a
    sign-in can take longer (up to `session._claim_seconds`) than a browser follows redirects
    of 2 s each (about twenty), and it would end on the browser's own error. A reload after a
    pause instead: no waiting request holds a server thread between reloads, and no reload
    loops for ever: each ends once the other request has signed in (the page asked for), or
    its claim has lapsed (a request that died: this one signs in), or the session has ended
    (this one starts afresh). A `<meta>` refresh, not a script (the CSP allows none inline),
    so it reloads with JavaScript off too; 503 with Retry-After, so a script that keeps
    cookies sees "not yet" rather than a page, and tries again.

    htmx would swap that page into a part of itself: it reloads the page instead, which waits
    in the server again, then gets the page. An action is not sent again (a reload is a GET):
    the keys page. Nothing is stored for this request, not even a notice: the session is the
    other request's to save (the page has no messages, no form, no token).
    """
    if request.htmx:
        response = HttpResponseClientRefresh()
    else:
        in_place = request.method in ("GET", "HEAD")
        context = {
            "reload_url": cookie_check.this_page(request) if in_place else reverse("keyadmin:keys"),
            "seconds": session.RELOAD_SECONDS,
        }
        response = render(request, "keyadmin/signing-in.html", context, status=503)
        response["Retry-After"] = str(session.RELOAD_SECONDS)
    add_never_cache_headers(response)
    return response


def _return_to(request: HttpRequest) -> str:
    if request.htmx:
        return request.htmx.current_url_abs_path or ""
    return request.get_full_path() if request.method == "GET" else ""


def signin_needed(request: HttpRequest) -> HttpResponse:
    """The answer to a signed-out request for a staff page."""
    if settings.KEYADMIN_SSO in ("remote-user", "assertion"):
        # The proxy or front server signs people in; it sent nobody this time.
        return sso_error(request, "no-identity")
    if dev_sign_in_enabled():
        url = reverse("sso:staff-signin")
    elif settings.KEYADMIN_SSO == "oidc":
        url = signin_url(request, _return_to(request))
    else:
        url = None
    if url is None:
        return render(request, "keyadmin/no-signin.html", status=403)
    if request.htmx:
        return HttpResponseClientRedirect(url)
    return redirect(url)


def staff_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if request.user.is_authenticated:
            return view(request, *args, **kwargs)
        return signin_needed(request)

    return wrapper


def role_required(
    role: str,
) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """Only staff holding `role` get through: others a 403 page (audited), anonymous sign-in."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}")

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if not request.user.is_authenticated:
                return signin_needed(request)
            if role in roles_of(request.user):
                return view(request, *args, **kwargs)
            audit.record(
                request,
                "denied",
                audit.DENIED,
                key_id=kwargs.get("key_id"),
                detail=f"{view.__name__} needs the {role} role",
            )
            return render(request, "keyadmin/forbidden.html", {"role": role}, status=403)

        return wrapper

    return decorator
