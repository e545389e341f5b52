"""Tiny views that the SSO and roles tests guard with keyadmin's decorators."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template import engines
from django.views.decorators.http import require_POST

from keyadmin.sso.access import role_required, staff_required
from keyadmin.sso.roles import roles_of
from keyadmin.sso.session import display_name
from keyadmin.sso.staff import staff_of

FLAGS = engines["django"].from_string(
    "view={{ can_view }} operate={{ can_operate }} audit={{ can_audit }} roles={{ roles|length }}"
)


@staff_required
def whoami(request: HttpRequest) -> HttpResponse:
    staff = staff_of(request.user)
    return JsonResponse(
        {
            "issuer": staff.issuer if staff else None,
            "subject": staff.subject if staff else None,
            "name": display_name(request.user),
            "groups": staff.groups if staff else [],
            "roles": sorted(roles_of(request.user)),
        }
    )


@staff_required
def flags(request: HttpRequest) -> HttpResponse:
    # Rendered through the configured engine, so TEMPLATES' context processors run.
    return HttpResponse(FLAGS.render({}, request))


@role_required("viewer")
def view_keys(request: HttpRequest) -> HttpResponse:
    return HttpResponse("listed")


@require_POST
@role_required("operator")
def change_key(request: HttpRequest, key_id: str) -> HttpResponse:
    return HttpResponse(f"changed {key_id}")


@role_required("auditor")
def read_trail(request: HttpRequest) -> HttpResponse:
    return HttpResponse("trail")


@staff_required
def remember(request: HttpRequest) -> HttpResponse:
    """A page that keeps something in the session, as the App Services sign-in does."""
    request.session["remembered"] = True
    return whoami(request)
