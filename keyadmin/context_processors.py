"""What the page header of every page needs: the staff member, their roles, the connection."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest

from keyadmin.appservices.connection import get_connection
from keyadmin.sso.mode import dev_sign_in_enabled
from keyadmin.sso.roles import AUDITOR, OPERATOR, VIEWER, roles_of
from keyadmin.sso.session import display_name


def keyadmin(request: HttpRequest) -> dict:
    user = getattr(request, "user", None)
    signed_in = user is not None and user.is_authenticated
    held = roles_of(user)
    return {
        "dev_sign_in": dev_sign_in_enabled(),
        "staff_name": display_name(user) if signed_in else "",
        # Views behind appservices_required already decrypted it; do not do it twice.
        "connection": (getattr(request, "connection", None) or get_connection(request))
        if signed_in
        else None,
        "app_id": settings.APPSERVICES_APP_ID,
        "roles": held,
        "can_view": VIEWER in held,
        "can_operate": OPERATOR in held,
        "can_audit": AUDITOR in held,
    }
