"""Fault injection, added latency and request statistics for the client API routes.

Tests script failures the real service (or a load balancer in front of it) could produce:
error statuses, HTML error pages, truncated JSON, slow answers, dropped connections and
redirects. A fault applies before the real handling (replacing it) or after it (the change is
committed, then the answer is lost or replaced), to the next `times` matching requests.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from dataclasses import dataclass
from typing import Any

from keyadmin.emulator.wire import JSON, Response, dump

ACTIONS = ("status", "html", "malformed", "delay", "drop", "redirect")
DEFAULT_STATUS = {"status": 500, "html": 502, "malformed": 200, "redirect": 307}
HTML_PAGE = (
    "<html>\r\n<head><title>{status} Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>{status} Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)
TRUNCATED_JSON = b'{"access_token":"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIi'


class FaultSpecError(ValueError):
    pass


@dataclass
class Fault:
    id: str
    action: str
    method: str = "*"
    path: re.Pattern[str] | None = None
    route: str | None = None
    status: int = 500
    body: Any = None
    has_body: bool = False
    content_type: str | None = None
    headers: dict[str, str] | None = None
    delay_ms: int = 0
    location: str | None = None
    when: str = "before"
    remaining: int | None = None

    def matches(self, method: str, path: str, route: str) -> bool:
        return (
            self.method in ("*", method)
            and (self.route is None or self.route == route)
            and (self.path is None or self.path.search(path) is not None)
        )

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "action": self.action,
            "method": self.method,
            "path": self.path.pattern if self.path else None,
            "route": self.route,
            "when": self.when,
            "times": self.remaining,
        }

    def response(self, default_error: Response) -> Response | None:
        """The answer this fault gives instead of the real one (None: drop the connection)."""
        if self.action == "drop":
            return None
        if self.action == "html":
            page = HTML_PAGE.format(status=self.status).encode()
            return Response(self.status, page, "text/html", self._extra_headers())
        if self.action == "malformed":
            return Response(self.status, TRUNCATED_JSON, JSON, self._extra_headers())
        if self.action == "redirect":
            headers = [("Location", self.location or ""), *self._extra_headers()]
            return Response(self.status, b"", None, headers)
        return self._status_response(default_error)

    def _status_response(self, default_error: Response) -> Response:
        if not self.has_body:
            response = Response(self.status, default_error.body, default_error.content_type)
        elif isinstance(self.body, str):
            # A string is sent as it is: tests use it for non-JSON error bodies.
            content_type = self.content_type or "text/plain; charset=utf-8"
            response = Response(self.status, self.body.encode(), content_type)
        else:
            response = Response(self.status, dump(self.body), self.content_type or JSON)
        response.headers.extend(self._extra_headers())
        return response

    def _extra_headers(self) -> list[tuple[str, str]]:
        return list((self.headers or {}).items())


def parse_fault(spec: Any, fault_id: str, routes: tuple[str, ...]) -> Fault:
    """A Fault from its JSON spec (see docs/local-appservices-server.md), or FaultSpecError."""
    if not isinstance(spec, dict):
        raise FaultSpecError("a fault is a JSON object")
    action = spec.get("action")
    if action not in ACTIONS:
        raise FaultSpecError(f"action must be one of {', '.join(ACTIONS)}")
    fault = Fault(id=fault_id, action=action)
    fault.method = _method(spec.get("method", "*"))
    fault.path = _pattern(spec.get("path"))
    fault.route = spec.get("route")
    if fault.route is not None and fault.route not in routes:
        raise FaultSpecError(f"route must be one of {', '.join(routes)}")
    fault.status = _integer(spec, "status", DEFAULT_STATUS.get(action, 500), 200, 599)
    fault.has_body = "body" in spec
    fault.body = spec.get("body")
    fault.content_type = _optional_str(spec, "content_type")
    fault.headers = _headers(spec.get("headers"))
    fault.delay_ms = _integer(spec, "delay_ms", 0, 0, 600_000)
    fault.location = _optional_str(spec, "location")
    if action == "redirect" and not fault.location:
        raise FaultSpecError("a redirect needs a 'location'")
    fault.when = spec.get("when", "before")
    if fault.when not in ("before", "after"):
        raise FaultSpecError("when must be 'before' or 'after'")
    times = spec.get("times")
    if times is not None and (not _is_int(times) or times < 1):
        raise FaultSpecError("times must be a positive integer or null")
    fault.remaining = times
    return fault


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _method(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise FaultSpecError("method must be an HTTP method or '*'")
    return value.upper()


def _pattern(value: Any) -> re.Pattern[str] | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise FaultSpecError("path must be a regular expression")
    try:
        return re.compile(value)
    except re.error as exc:
        raise FaultSpecError(f"path is not a valid regular expression: {exc}") from None


def _integer(spec: dict, name: str, default: int, low: int, high: int) -> int:
    value = spec.get(name, default)
    if not _is_int(value) or not low <= value <= high:
        raise FaultSpecError(f"{name} must be an integer from {low} to {high}")
    return value


def _optional_str(spec: dict, name: str) -> str | None:
    value = spec.get(name)
    if value is not None and not isinstance(value, str):
        raise FaultSpecError(f"{name} must be a string")
    return value


def _headers(value: Any) -> dict[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise FaultSpecError("headers must be an object of strings")
    return value


class Faults:
    """The active faults, first added first matched; each use counts against `times`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._next_id = 0

    def new_id(self) -> str:
        with self._lock:
            self._next_id += 1
            return f"fault-{self._next_id}"

    def add(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def remove(self, fault_id: str) -> bool:
        with self._lock:
            before = len(self._faults)
            self._faults = [fault for fault in self._faults if fault.id != fault_id]
            return len(self._faults) < before

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def describe(self) -> list[dict[str, Any]]:
        with self._lock:
            return [fault.describe() for fault in self._faults]

    def take(self, method: str, path: str, route: str) -> Fault | None:
        """The first fault matching this request, used up once."""
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, path, route):
                    if fault.remaining is not None:
                        fault.remaining -= 1
                        if fault.remaining == 0:
                            self._faults.remove(fault)
                    return fault
        return None


class Stats:
    def __init__(self, routes: tuple[str, ...]) -> None:
        self._routes = routes
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()

    def record(self, route: str) -> None:
        with self._lock:
            self._counts[route] += 1

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            by_route = {route: self._counts[route] for route in self._routes}
            return {"total": sum(self._counts.values()), "by_route": by_route}


class Latency:
    """Milliseconds added before every client API answer."""

    def __init__(self, ms: int) -> None:
        self.ms = ms
