"""Health checks for the process manager, the load balancer and monitoring. JSON, no sign-in.

- `/healthz`: the process answers. Touches nothing else (no database, no App Services), so a
  restart is never triggered by a dependency that is down.
- `/readyz`: the database answers a query; with `?appservices=1`, App Services also answers
  the location request for APPSERVICES_APP_ID. 503 when a check fails.

Both answer GET and HEAD, are never cached, are exempt from the https redirect
(SECURE_REDIRECT_EXEMPT) and from the per-request SSO (keyadmin.sso.middleware), and say
nothing about why a check failed beyond its name: the reason goes to the log.
"""

from __future__ import annotations

import logging

from django.db import DatabaseError, connections
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from keyadmin import appservices

logger = logging.getLogger(__name__)


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
        appservices.AppServices().check_location()
        return True
    except appservices.AppServicesError as exc:
        logger.warning(
            "readyz: App Services did not answer the location request: %s (status %s)",
            type(exc).__name__,
            exc.status,
        )
        return False


@never_cache
@require_safe
def readyz(request: HttpRequest) -> JsonResponse:
    checks = {"database": _database()}
    if request.GET.get("appservices") in ("1", "true", "yes"):
        checks["appservices"] = _appservices()
    ready = all(checks.values())
    return JsonResponse(
        {
            "status": "ok" if ready else "unavailable",
            "checks": {name: "ok" if ok else "failed" for name, ok in checks.items()},
        },
        status=200 if ready else 503,
    )
