"""keyadmin's log formats: plain lines for people, JSON lines for log shipping.

    KEYADMIN_LOG_FORMAT=plain   2026-11-26 10:00:00,000 INFO keyadmin.access GET /keys/ 200 ...
    KEYADMIN_LOG_FORMAT=json    {"time": "2026-11-26T10:00:00.000Z", "level": "INFO", ...}

Both formats pass every line through `redact`, so a token that reaches a message anyway (a
third-party library's debug line, a path someone pasted a secret into) is replaced by
"[redacted]" before it is written. The JSON format adds the id of the request being served to
every line logged while serving it (`request_id`), and the fields of keyadmin's request line.

Named `logformat`, not `logging`: a module `keyadmin.logging` would shadow the standard library
for code inside the package that says `import logging`.
"""

from __future__ import annotations

import json
import logging
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from keyadmin.redact import for_log, printable

# The request being served by this thread (set by keyadmin.middleware.access_log).
current_request_id: ContextVar[str] = ContextVar("keyadmin_request_id", default="")

FORMATS = ("plain", "json")
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

# Fields of keyadmin's own records (`extra=`) that the JSON format writes out. Anything else a
# library attaches to a record (Django's `request`, for one) is never serialised: its repr can
# hold a query string or headers.
EXTRA_FIELDS = ("method", "path", "status", "duration_ms", "staff", "status_code")


def clean_path(path: str, limit: int = 200) -> str:
    """A request path fit for one log line: no control characters, no token, at most `limit`."""
    # Redact before cutting: a cut through a secret would leave a prefix too short to look like
    # one. The generous first cut only bounds the work; what it drops is past `limit` anyway.
    text = for_log(printable(path[: limit * 64], "?"))
    return text if len(text) <= limit else text[: limit - 1] + "…"


class PlainFormatter(logging.Formatter):
    """`%(asctime)s %(levelname)s %(name)s %(message)s`, redacted, one line per record."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        return for_log(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC), level, logger, message, request id, extras."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, tz=UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": for_log(record.getMessage()),
        }
        request_id = getattr(record, "request_id", None) or current_request_id.get()
        if not request_id:
            request = getattr(record, "request", None)  # Django's django.request records
            request_id = getattr(request, "request_id", "")
        if request_id:
            entry["request_id"] = str(request_id)
        for name in EXTRA_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = value if isinstance(value, int | float) else for_log(str(value))
        if record.exc_info:
            entry["exception"] = for_log(self.formatException(record.exc_info))
        elif record.exc_text:
            entry["exception"] = for_log(record.exc_text)
        if record.stack_info:
            entry["stack"] = for_log(self.formatStack(record.stack_info))
        return json.dumps(entry, ensure_ascii=False, default=str)


def logging_config(level: str = "INFO", fmt: str = "plain") -> dict[str, Any]:
    """The LOGGING setting: everything to stderr, keyadmin's loggers at `level`."""
    formatter = JsonFormatter if fmt == "json" else PlainFormatter
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"keyadmin": {"()": formatter}},
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "keyadmin"}},
        "root": {"handlers": ["console"], "level": "WARNING"},
        "loggers": {
            "keyadmin": {"level": level, "propagate": True},
        },
    }
