"""The staff member's way in and out: sign-in (development), sign-out, the OIDC login views,
the bridge's JWKS and the signed-out page."""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib import auth
from django.core.exceptions import SuspiciousOperation
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView, OIDCAuthenticationRequestView

from keyadmin import audit, throttle
from keyadmin.sso import access, actfor, bridge, oidc, session
from keyadmin.sso.forms import StaffSignInForm
from keyadmin.sso.mode import dev_sign_in_enabled

logger = logging.getLogger("keyadmin.sso.oidc")


def _safe_next(request: HttpRequest, default: str) -> str:
    target = request.POST.get("next") or request.GET.get("next") or ""
    allowed = url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    )
    return target if allowed else default


@require_http_methods(["GET", "POST"])
def staff_signin(request: HttpRequest) -> HttpResponse:
    if not dev_sign_in_enabled():
        # Fail closed: no configured way to know who the staff member is.
        return render(request, "keyadmin/no-signin.html", status=403)
    form = StaffSignInForm(request.POST if request.method == "POST" else None)
    if form.is_valid():
        try:
            throttle.begin(request, throttle.dev_signin(request))
        except throttle.Throttled as refused:
            if getattr(request, "htmx", False):
                return throttle.fragment(request, refused)
            form.add_error(None, throttle.message(refused))
            context = {"form": form, "next": _safe_next(request, "")}
            response = render(request, "keyadmin/staff-signin.html", context)
            return throttle.refusal(response, refused)
        # No roles posted (a scripted sign-in) means every role, as sign_in_dev does by default.
        session.sign_in_dev(request, form.cleaned_data["name"], form.cleaned_data["roles"] or None)
        return redirect(_safe_next(request, "keyadmin:keys"))
    context = {"form": form, "next": _safe_next(request, "")}
    return render(request, "keyadmin/staff-signin.html", context)


@require_POST
@never_cache
def signout(request: HttpRequest) -> HttpResponse:
    session.sign_out(request)  # revokes the App Services refresh token upstream, flushes, audits
    # The company sign-on may still know the staff member: offer its sign-out as a link, so this
    # page (and its Clear-Site-Data) is what the browser gets first.
    context = {"sso_signout_url": session.signout_url(request)}
    response = render(request, "keyadmin/signed-out.html", context)
    response["Clear-Site-Data"] = '"cache", "storage"'
    return response


@require_GET
def jwks(request: HttpRequest) -> HttpResponse:
    """The public key(s) App Services checks keyadmin's RS256 custom-token JWTs with: the
    bridge's, and those acting for customers on apps that sign with RS256."""
    if not (bridge.enabled() or actfor.uses_bridge_key()):
        raise Http404
    response = JsonResponse(bridge.public_jwks())
    # Public and the same for everyone; a short max-age lets a rotation show within minutes.
    response["Cache-Control"] = "public, max-age=300"
    return response


@require_GET
def signed_out(request: HttpRequest) -> HttpResponse:
    """Where the identity provider sends the browser after its own sign-out."""
    response = render(request, "keyadmin/signed-out.html", {"sso_signed_out": True})
    response["Clear-Site-Data"] = '"cache", "storage"'
    return response


class OIDCAuthenticate(OIDCAuthenticationRequestView):
    """Start the login: state, nonce and a PKCE S256 challenge go with the redirect."""

    get_settings = staticmethod(oidc.oidc_setting)

    def get(self, request):
        if not oidc.enabled():
            raise Http404
        return super().get(request)


class OIDCCallback(OIDCAuthenticationCallbackView):
    """The provider sends the browser back here with a code; trade it, verify, sign in."""

    get_settings = staticmethod(oidc.oidc_setting)

    def get(self, request):
        if not oidc.enabled():
            raise Http404
        try:
            returned_iss = request.GET.get("iss")
            if returned_iss is not None and returned_iss != settings.KEYADMIN_OIDC_ISSUER:
                # RFC 9207: the answer names another provider (a mix-up attack).
                raise SuspiciousOperation("the authorization response is from another issuer")
            return super().get(request)
        except SuspiciousOperation as exc:
            # A forged or replayed callback, or a token that failed verification: no session.
            logger.warning("OpenID Connect callback refused: %s", exc)
            self.request = request
            if request.user.is_authenticated:
                auth.logout(request)
            return self.login_failure()

    def login_success(self):
        request = self.request
        if request.user.is_authenticated and request.user != self.user:
            session.end_session(request, "another staff member signed in")
        auth.login(request, self.user)
        session.after_sign_in(request, self.user)
        return HttpResponseRedirect(self.success_url)

    def login_failure(self):
        refused = getattr(self.request, "keyadmin_refused_identity", None)
        if refused is not None:
            audit.record(
                self.request,
                "signin",
                audit.DENIED,
                detail="not in an allowed group",
                identity=refused,
            )
            return access.sso_error(self.request, "not-staff", status=403)
        audit.record(self.request, "signin", audit.FAILED, detail="OpenID Connect login failed")
        return access.sso_error(self.request, "oidc-failed", status=403)
