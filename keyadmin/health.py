"""Health checks for the process manager, the load balancer and monitoring. JSON, no sign-in.

- `/healthz`: the process answers. Touches nothing else (no database, no App Services), so a
  restart is never triggered by a dependency that is down.
- `/readyz`: the database answers a query; with `?appservices=1`, App Services also answers
  the location request for APPSERVICES_APP_ID. 503 when a check fails.

Both answer GET and HEAD, are never cached, are exempt from the https redirect
(SECURE_REDIRECT_EXEMPT) and from the per-request SSO (keyadmin.sso.middleware), and say
nothing about why a check failed beyond its name: the reason goes to the log.

Anyone who can reach keyadmin can ask `/readyz`, so the App Services check must not let them
drive requests upstream: only a client on this machine or one holding KEYADMIN_READYZ_TOKEN
(`Authorization: Bearer ...`) gets it, and one answer stands for every probe of this process for
UPSTREAM_CHECK_SECONDS. Everyone else gets the database check and a note saying why.
"""

from __future__ import annotations

import hmac
import logging
import threading
import time

from django.conf import settings
from django.db import DatabaseError, connections
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from keyadmin import appservices
from keyadmin.appservices.apps import default_app
from keyadmin.origins import from_this_machine

logger = logging.getLogger(__name__)

# How long one App Services answer stands for every readiness probe of this process: probes
# every few seconds from several load balancers then cost one upstream request, not one each.
UPSTREAM_CHECK_SECONDS = 5.0

NOT_ASKED = (
    "App Services was not checked: only a client on this machine or one sending "
    "KEYADMIN_READYZ_TOKEN as a bearer token may ask for it"
)


@never_cache
@require_safe
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def _database() -> bool:
    try:
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT 1")
            return cursor.fetchone() == (1,)
    except DatabaseError as exc:
        logger.warning("readyz: the database did not answer: %s", type(exc).__name__)
        return False


def _appservices() -> bool:
    try:
        appservices.AppServices(default_app()).check_location()  # the first app listed
        return True
    except appservices.AppServicesError as exc:
        logger.warning(
            "readyz: App Services did not answer the location request: %s (status %s)",
            type(exc).__name__,
            exc.status,
        )
        return False


def _clock() -> float:
    return time.monotonic()


class UpstreamCheck:
    """The last App Services check, shared by every request of this process.

    The lock guards the state only, never the network call: the request that finds the answer
    stale makes the call; requests meanwhile take the last answer, or, when there is none yet,
    wait for the running call (at most APPSERVICES_DEADLINE) instead of making another.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._answer: bool | None = None
        self._answered_at = 0.0
        self._running: threading.Event | None = None

    def ok(self) -> bool:
        with self._lock:
            fresh = _clock() - self._answered_at < UPSTREAM_CHECK_SECONDS
            if self._answer is not None and (fresh or self._running is not None):
                return self._answer
            running, mine = self._running, self._running is None
            if mine:
                running = self._running = threading.Event()
        if not mine:
            running.wait(settings.APPSERVICES_DEADLINE)
            with self._lock:
                return bool(self._answer)
        answer = False
        try:
            answer = _appservices()
        finally:
            with self._lock:
                self._answer, self._answered_at, self._running = answer, _clock(), None
            running.set()
        return answer

    def forget(self) -> None:
        with self._lock:
            self._answer = None


upstream_check = UpstreamCheck()


def _may_ask_upstream(request: HttpRequest) -> bool:
    token = settings.KEYADMIN_READYZ_TOKEN
    scheme, _, offered = request.headers.get("Authorization", "").partition(" ")
    if token and scheme.lower() == "bearer":
        return hmac.compare_digest(offered.strip().encode(), token.encode())
    return from_this_machine(request)


@never_cache
@require_safe
def readyz(request: HttpRequest) -> JsonResponse:
    checks = {"database": _database()}
    note = None
    if request.GET.get("appservices") in ("1", "true", "yes"):
        if _may_ask_upstream(request):
            checks["appservices"] = upstream_check.ok()
        else:
            note = NOT_ASKED
    ready = all(checks.values())
    answer = {
        "status": "ok" if ready else "unavailable",
        "checks": {name: "ok" if ok else "failed" for name, ok in checks.items()},
    }
    if note:
        answer["note"] = note
    return JsonResponse(answer, status=200 if ready else 503)
