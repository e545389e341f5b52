"""URL converters: a path that does not name a well-formed key id is a 404 before any view runs."""

from __future__ import annotations

import re

from keyadmin.appservices import KEY_ID_PATTERN


class KeyIdConverter:
    regex = KEY_ID_PATTERN

    def to_python(self, value: str) -> str:
        return value

    def to_url(self, value: str) -> str:
        # reverse() checks against `regex` too; this also refuses ids from elsewhere (no "../").
        if not isinstance(value, str) or not re.fullmatch(KEY_ID_PATTERN, value):
            raise ValueError(f"not a key id: {value!r}")
        return value
