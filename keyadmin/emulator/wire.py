"""Requests, responses and errors as the local server's route handlers see them.

The handlers never touch sockets: they take a `Request` and return a `Response` or raise
`ApiError`, which the server turns into App Services' error body.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from email.message import Message
from typing import Any

JSON = "application/json"  # exactly this: realm-core only parses error bodies with no charset


class ApiError(Exception):
    """An App Services error answer: `{"error", "error_code", "link"}` with this status.

    `error_code` None leaves the field out, as the real service does for some errors (an empty
    key name, a malformed Bearer header, a foreign signature); SDKs then report "unknown".
    """

    def __init__(self, status: int, error_code: str | None, error: str) -> None:
        super().__init__(f"{status} {error_code}: {error}")
        self.status = status
        self.error_code = error_code
        self.error = error


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: Message
    body: bytes
    base_url: str  # this server as the client reached it, e.g. http://127.0.0.1:9090

    def json(self) -> Any:
        """The body as JSON; an empty body is None."""
        if not self.body.strip():
            return None
        try:
            return json.loads(self.body)
        except (UnicodeDecodeError, ValueError):
            raise ApiError(400, "BadRequest", "invalid JSON in the request body") from None

    def json_object(self) -> dict[str, Any]:
        """The body as a JSON object; an empty body is an empty object."""
        value = self.json()
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise ApiError(400, "BadRequest", "the request body must be a JSON object")
        return value

    def first(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str | None = None
    headers: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def json(cls, status: int, value: Any) -> Response:
        return cls(status, dump(value), JSON)

    @classmethod
    def empty(cls, status: int = 204) -> Response:
        # No Content-Type at all: realm-web reads a 2xx without one as null, and throws on
        # anything that is not JSON.
        return cls(status)


def dump(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
