"""Prometheus metrics for operators: what keyadmin serves, asks upstream, refuses and records.

Counts are kept per process. Under gunicorn each worker writes them to files in
PROMETHEUS_MULTIPROC_DIR, which gunicorn.conf.py makes fresh at every start (and tells
prometheus_client about each worker that exits), and `/metrics` (keyadmin/metrics_views.py) adds
up every worker's at each scrape. Without that variable (runserver, the tests) they live in this
process's memory. The number of act-for connections is not counted here at all: the exposition
works it out from the audit trail at each scrape, so it holds across restarts and instances.

Every label value comes from a closed set keyadmin itself chose: a URL pattern's name, an App
Services route template, an HTTP status or failure kind, an audit action and outcome, a
throttle scope, a sign-in mode. Never a path, a key id or name, a customer id, a ticket, a staff
name or email, an address, a token or a secret.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import Resolver404, resolve
from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics

# keyadmin's own metrics only: in multiprocess mode the exposition reads every worker's files
# instead, and a process collector would describe just the worker that happened to answer.
REGISTRY = CollectorRegistry(auto_describe=True)
# The `_created` series exist only without multiprocess mode: leave them out there too, so a
# development server and production export the same names.
disable_created_metrics()

# From 5 ms (a local answer) to 10 s (APPSERVICES_DEADLINE's default is 15 s, nginx's 65 s),
# close together around the 50-150 ms an action usually takes, so p50 and p95 come out sharp.
SECONDS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 0.75, 1, 2.5, 5, 10)

HTTP_REQUESTS = Counter(
    "keyadmin_http_requests",
    "Requests answered, by URL pattern name, method and status.",
    ("route", "method", "status"),
    registry=REGISTRY,
)
HTTP_DURATION = Histogram(
    "keyadmin_http_request_duration_seconds",
    "Time from keyadmin receiving a request to its answer, by URL pattern name.",
    ("route",),
    buckets=SECONDS_BUCKETS,
    registry=REGISTRY,
)
UPSTREAM_REQUESTS = Counter(
    "keyadmin_upstream_requests",
    "App Services requests, by route template and outcome (HTTP status or failure kind).",
    ("route", "outcome"),
    registry=REGISTRY,
)
UPSTREAM_DURATION = Histogram(
    "keyadmin_upstream_request_duration_seconds",
    "Time of one App Services exchange, connect to last byte, by route template.",
    ("route",),
    buckets=SECONDS_BUCKETS,
    registry=REGISTRY,
)
THROTTLE_BLOCKS = Counter(
    "keyadmin_signin_throttle_blocks",
    "Sign-in throttle blocks started, by counter scope.",
    ("scope",),
    registry=REGISTRY,
)
THROTTLE_REFUSALS = Counter(
    "keyadmin_signin_throttle_refusals",
    "Sign-in attempts refused by the throttle, by the scope of each counter that refused.",
    ("scope",),
    registry=REGISTRY,
)
AUDIT_WRITES = Counter(
    "keyadmin_audit_writes",
    "Audit events written (result stored) or lost to a database error (failed).",
    ("action", "outcome", "result"),
    registry=REGISTRY,
)
STAFF_SIGNINS = Counter(
    "keyadmin_staff_signins",
    "Staff sign-ins, by KEYADMIN_SSO mode and outcome (ok, failed, denied).",
    ("mode", "outcome"),
    registry=REGISTRY,
)

_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_SSO_MODES = frozenset({"dev", "oidc", "remote-user", "assertion"})
# AuditEvent.Outcome's values: this module is imported while Django loads its apps, before models.
_OUTCOMES = frozenset({"ok", "failed", "denied"})


# --- what the rest of keyadmin calls ---


def observe_upstream(method: str, route: str, outcome: str, seconds: float) -> None:
    """An UPSTREAM_OBSERVERS entry (keyadmin/appservices/client.py): one App Services exchange."""
    # The client's route templates already start with the method; say it once either way.
    named = route if route.startswith(f"{method} ") else f"{method} {route}"
    UPSTREAM_REQUESTS.labels(named, outcome).inc()
    UPSTREAM_DURATION.labels(named).observe(seconds)


def throttled(blocks_started: Iterable[str], refused_by: Iterable[str]) -> None:
    """One sign-in attempt the throttle refused: the scopes that started a block, and refused."""
    for scope in blocks_started:
        THROTTLE_BLOCKS.labels(scope).inc()
    for scope in refused_by:
        THROTTLE_REFUSALS.labels(scope).inc()


def audit_written(action: str, outcome: str, stored: bool) -> None:
    """`keyadmin.audit.record` appended an event (or the database refused it)."""
    AUDIT_WRITES.labels(action, outcome, "stored" if stored else "failed").inc()
    if action == "signin":
        staff_signin(outcome)


def staff_signin(outcome: str) -> None:
    """A staff sign-in, also when the audit trail samples it out (a flood of refusals)."""
    mode = settings.KEYADMIN_SSO if settings.KEYADMIN_SSO in _SSO_MODES else "none"
    STAFF_SIGNINS.labels(mode, outcome if outcome in _OUTCOMES else "other").inc()


def _route(request: HttpRequest) -> str:
    match = getattr(request, "resolver_match", None)
    if match is None:
        # Answered before the URL was resolved (an https redirect, a refused host) or unresolvable.
        try:
            match = resolve(request.path_info)
        except Resolver404:
            match = None
    if match is not None:
        return match.view_name or match.route or "unnamed"
    # WhiteNoise answers static files before any URL pattern is resolved.
    if request.path.startswith(settings.STATIC_URL or "/static/"):
        return "static"
    return "unmatched"


def http_requests(get_response: Callable[[HttpRequest], HttpResponse]):
    """Middleware, first in MIDDLEWARE: every answer counted, https redirects and 404s too."""

    def middleware(request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        status = 500
        try:
            response = get_response(request)
            status = response.status_code
            return response
        finally:
            route = _route(request)
            method = request.method if request.method in _METHODS else "other"
            HTTP_REQUESTS.labels(route, method, str(status)).inc()
            HTTP_DURATION.labels(route).observe(time.perf_counter() - started)

    return middleware
