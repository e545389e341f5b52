"""What the page header of every page needs: the staff member, their roles, the connection."""

from __future__ import annotations

from django.http import HttpRequest

from keyadmin import audit
from keyadmin.appservices.apps import default_app
from keyadmin.appservices.connection import get_connection
from keyadmin.keys.guards import ends_at_text, form_binding
from keyadmin.sso.mode import dev_sign_in_enabled
from keyadmin.sso.roles import AUDITOR, OPERATOR, VIEWER, roles_of, roles_of_on_app
from keyadmin.sso.session import display_name


def keyadmin(request: HttpRequest) -> dict:
    user = getattr(request, "user", None)
    signed_in = user is not None and user.is_authenticated
    # Views behind appservices_required already decrypted it; do not do it twice.
    connection = (
        (getattr(request, "connection", None) or get_connection(request)) if signed_in else None
    )
    # On a connected page, the roles held on its app (the app's own role groups narrow them).
    held = roles_of_on_app(user, connection.app) if connection is not None else roles_of(user)
    acting = connection.acting if connection is not None else None
    return {
        "dev_sign_in": dev_sign_in_enabled(),
        "staff_name": display_name(user) if signed_in else "",
        "connection": connection,
        "acting_ends_at": ends_at_text(acting.ends_at) if acting else "",
        "acting_binding": form_binding(connection) if acting else "",
        # Offered only while it can be done: not once a key was made for the user here.
        "acting_may_delete_user": bool(
            connection is not None
            and connection.may_delete_user
            and not audit.keys_made_for(connection.app_id, connection.user_id)
        ),
        "app_id": connection.app_id if connection is not None else default_app().app_id,
        "roles": held,
        "can_view": VIEWER in held,
        "can_operate": OPERATOR in held,
        "can_audit": AUDITOR in held,
    }
