"""Text fit to keep: credentials replaced by "[redacted]", control characters gone.

One module for the three places keyadmin writes free text down: log lines (`for_log`), audit
fields (`for_audit`) and excerpts in failure messages of the tests and bench (`for_log` too).
Plain Python, no Django: the logging configuration and the bench load it before settings.
"""

from __future__ import annotations

import re
import unicodedata

JWT = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*")
BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[^\s\"',;]+")
SESSION_COOKIE = re.compile(r"(?i)\b((?:__host-)?(?:sessionid|csrftoken)=)[^\s;\"',]+")

# Long unbroken runs of token alphabet: App Services key secrets (64), Fernet tokens (100+).
# In logs from 48 on, so that identifiers stay readable: key ids (24), request ids (32), uuids
# (36) and staff subjects such as Entra ID's (43); without "/", so a URL path is judged segment
# by segment.
OPAQUE_IN_LOGS = re.compile(r"[A-Za-z0-9+=_-]{48,}")
# An audit row's free text (its `detail`) never needs an identifier of that length (key ids,
# request ids and subjects have fields of their own), so it is stricter: from 40 on, and "/"
# included, which also catches PEM and base64 bodies.
OPAQUE_IN_AUDIT = re.compile(r"[A-Za-z0-9+/=_-]{40,}")

REDACTED = "[redacted]"


def printable(text: str, replacement: str = "") -> str:
    """`text` with every control, format or unassigned character replaced by `replacement`."""
    return "".join(replacement if unicodedata.category(ch)[0] == "C" else ch for ch in text)


def for_log(text: str) -> str:
    """`text` with anything shaped like a credential replaced by "[redacted]"."""
    text = BEARER.sub(lambda m: f"{m.group(1)} {REDACTED}", text)
    text = SESSION_COOKIE.sub(lambda m: f"{m.group(1)}{REDACTED}", text)
    text = JWT.sub(REDACTED, text)
    return OPAQUE_IN_LOGS.sub(REDACTED, text)


def for_audit(value: object, limit: int, *, opaque_too: bool) -> str:
    """A value fit for an audit field of `limit` characters; `opaque_too` for free text."""
    if value is None:
        return ""
    text = printable(str(value)[: limit * 4], " ")
    text = JWT.sub(REDACTED, text)
    if opaque_too:
        text = OPAQUE_IN_AUDIT.sub(REDACTED, text)
    return text.strip()[:limit]
