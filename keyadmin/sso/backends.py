"""The authentication backend of staff sessions: it only loads the user a session names.

There is no password sign-in: sessions are opened by `django.contrib.auth.login` once a source
has verified an identity (middleware, OIDC callback, development sign-in).
"""

from __future__ import annotations

from django.contrib.auth.backends import BaseBackend

from keyadmin import hotreads

STAFF_BACKEND = "keyadmin.sso.backends.StaffBackend"


class StaffBackend(BaseBackend):
    def get_user(self, user_id):
        # Every request: the user and its Staff row in one prepared read (keyadmin.hotreads).
        user = hotreads.staff_user(user_id)
        return user if user is not None and user.is_active else None
