from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest

from keyadmin import identity
from keyadmin.connection import get_connection


def keyadmin(request: HttpRequest) -> dict:
    signed_in = getattr(request, "user", None) is not None and request.user.is_authenticated
    return {
        "dev_sign_in": identity.dev_sign_in_enabled(),
        "staff_name": identity.display_name(request.user) if signed_in else "",
        # Views behind appservices_required already decrypted it; do not do it twice.
        "connection": (getattr(request, "connection", None) or get_connection(request))
        if signed_in
        else None,
        "app_id": settings.APPSERVICES_APP_ID,
    }
