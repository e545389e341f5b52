"""keyadmin's session engine: Django's database sessions, loaded with one prepared read.

Sessions stay server-side, one row each, as with `django.contrib.sessions.backends.db` (which
this is, except for how a row is read: keyadmin.hotreads).
"""

from __future__ import annotations

from django.contrib.sessions.backends import db

from keyadmin import hotreads


class SessionStore(db.SessionStore):
    def load(self) -> dict:
        data = hotreads.session_data(self.session_key)
        if data is None:
            self._session_key = None  # as Django does: an unknown or expired key starts afresh
            return {}
        return self.decode(data)
