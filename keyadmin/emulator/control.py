"""The `/_emulator/` test controls: stats, latency, faults, users and a secret-free key view.

These requests are not client API traffic: they are never counted, delayed or faulted.
"""

from __future__ import annotations

from typing import Any

from keyadmin.emulator.api import ROUTE_NAMES
from keyadmin.emulator.faults import Faults, FaultSpecError, Latency, Stats, parse_fault
from keyadmin.emulator.store import EmailTaken, Store
from keyadmin.emulator.wire import ApiError, Request, Response

PREFIX = "/_emulator/"


class ControlApi:
    def __init__(self, store: Store, faults: Faults, stats: Stats, latency: Latency) -> None:
        self.store = store
        self.faults = faults
        self.stats = stats
        self.latency = latency
        self._routes = {
            ("GET", "stats"): self._get_stats,
            ("POST", "stats/reset"): self._reset_stats,
            ("GET", "latency"): self._get_latency,
            ("POST", "latency"): self._set_latency,
            ("GET", "faults"): self._list_faults,
            ("POST", "faults"): self._add_fault,
            ("DELETE", "faults"): self._clear_faults,
            ("POST", "users"): self._add_user,
            ("GET", "keys"): self._keys_of,
        }

    def handle(self, request: Request) -> Response:
        name = request.path.removeprefix(PREFIX).rstrip("/")
        try:
            if request.method == "DELETE" and name.startswith("faults/"):
                return self._remove_fault(name.removeprefix("faults/"))
            handler = self._routes.get((request.method, name))
            if handler is None:
                return _error(404, f"no control route {request.method} {request.path}")
            return handler(request)
        except ApiError as error:
            return _error(error.status, error.error)

    def _get_stats(self, request: Request) -> Response:
        return Response.json(200, self.stats.snapshot())

    def _reset_stats(self, request: Request) -> Response:
        self.stats.reset()
        return Response.json(200, self.stats.snapshot())

    def _get_latency(self, request: Request) -> Response:
        return Response.json(200, {"ms": self.latency.ms})

    def _set_latency(self, request: Request) -> Response:
        ms = request.json_object().get("ms")
        if not isinstance(ms, int) or isinstance(ms, bool) or not 0 <= ms <= 600_000:
            return _error(400, "ms must be an integer from 0 to 600000")
        self.latency.ms = ms
        return Response.json(200, {"ms": ms})

    def _list_faults(self, request: Request) -> Response:
        return Response.json(200, {"faults": self.faults.describe()})

    def _add_fault(self, request: Request) -> Response:
        try:
            fault = parse_fault(request.json(), self.faults.new_id(), ROUTE_NAMES)
        except FaultSpecError as exc:
            return _error(400, str(exc))
        self.faults.add(fault)
        return Response.json(201, {"id": fault.id})

    def _clear_faults(self, request: Request) -> Response:
        self.faults.clear()
        return Response.empty(204)

    def _remove_fault(self, fault_id: str) -> Response:
        if not self.faults.remove(fault_id):
            return _error(404, f"no fault {fault_id}")
        return Response.empty(204)

    def _add_user(self, request: Request) -> Response:
        body = request.json_object()
        email, password = body.get("email"), body.get("password")
        if not isinstance(email, str) or not email or not isinstance(password, str):
            return _error(400, "email and password must be strings")
        try:
            user_id = self.store.create_email_user(email, password)
        except EmailTaken:
            return _error(409, "a user with this email already exists")
        return Response.json(201, {"user_id": user_id})

    def _keys_of(self, request: Request) -> Response:
        email = request.first("email")
        user = self.store.user_by_email(email) if email else None
        if user is None:
            return _error(404, "no user with this email")
        return Response.json(200, {"keys": [key.public() for key in self.store.keys(user.id)]})


def _error(status: int, message: str) -> Response:
    body: dict[str, Any] = {"error": message}
    return Response.json(status, body)
