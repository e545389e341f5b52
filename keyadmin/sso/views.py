"""The SSO pages that are not part of a login flow: the bridge's JWKS and the signed-out page."""

from __future__ import annotations

from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from keyadmin.sso import bridge


@require_GET
def jwks(request: HttpRequest) -> HttpResponse:
    """The public key(s) App Services checks the bridge's custom-token JWTs with."""
    if not bridge.enabled():
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
