"""Template flags for the signed-in staff member's roles (register in TEMPLATES)."""

from __future__ import annotations

from django.http import HttpRequest

from keyadmin.roles import AUDITOR, OPERATOR, VIEWER, roles_of


def roles(request: HttpRequest) -> dict:
    held = roles_of(getattr(request, "user", None))
    return {
        "roles": held,
        "can_view": VIEWER in held,
        "can_operate": OPERATOR in held,
        "can_audit": AUDITOR in held,
    }
