"""`/metrics`: keyadmin's Prometheus metrics (keyadmin/metrics.py), for a scraper only.

Answered to a client on this machine, or to one sending `Authorization: Bearer
<KEYADMIN_METRICS_TOKEN>` (compared in constant time). Everyone else gets the 404 of any unknown
page, so nothing says the page exists; a wrong token gets it too, from loopback as well.

"This machine" is judged on the connection's peer address only, and never for a request that came
through a proxy: behind nginx on the same host every peer is 127.0.0.1, so a request carrying
X-Forwarded-For (or Forwarded, X-Real-IP) is somebody else's, whatever the address in it says.
deploy/nginx/keyadmin-front.conf also refuses the path outright.

No sign-in, no session, no audit row, no https redirect (SECURE_REDIRECT_EXEMPT), never cached.
Besides the counters it answers keyadmin_act_for_active_connections, read from the audit trail
at each scrape (`active_act_for_connections`).
"""

from __future__ import annotations

import hmac
import logging
import os
import re
from collections.abc import Iterator
from datetime import timedelta

from django.conf import settings
from django.db import DatabaseError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from keyadmin import metrics
from keyadmin.appsfile import LONGEST_ACT_FOR_MINUTES
from keyadmin.models import AuditEvent
from keyadmin.origins import from_this_machine

logger = logging.getLogger("keyadmin.metrics")


def _may_scrape(request: HttpRequest) -> bool:
    scheme, _, offered = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer":
        token = settings.KEYADMIN_METRICS_TOKEN
        return bool(token) and hmac.compare_digest(offered.strip().encode(), token.encode())
    return from_this_machine(request)


def _registry() -> CollectorRegistry:
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return metrics.REGISTRY
    # Every worker's files, the dead ones' counters included, added up for this one answer.
    registry = CollectorRegistry()
    MultiProcessCollector(registry)
    return registry


# --- act-for connections, worked out at each scrape ---

# keyadmin/keys/connect.py writes an act-for-start row's time box as "<minutes> min".
_MINUTES = re.compile(r"(\d+) min\b")
# Rows after an act-for start, by the same staff member, that end it: its own end (a time box
# ended, a stop, a replacement), and a sign-out of App Services or of keyadmin (neither of which
# writes an act-for-end row). An end row must also name the same app and App Services user.
_ENDS_ANY = (AuditEvent.Action.APPSERVICES_SIGNOUT, AuditEvent.Action.SIGNOUT)
_ENDS = (AuditEvent.Action.ACT_FOR_END, *_ENDS_ANY)


def active_act_for_connections() -> int:
    """Act-for connections whose time box has not ended and that no later audit row ended.

    Read from the audit trail, the one record every instance shares, so any instance gives the
    same answer and a restart changes nothing. It can only count too many, never too few, and
    only within a time box: a session that simply expires (no request, no row) counts until its
    time box ends, and so does every other session of a staff member who signs out of one.
    """
    now = timezone.now()
    since = now - timedelta(minutes=LONGEST_ACT_FOR_MINUTES)
    fields = ("id", "at", "staff_issuer", "staff_subject", "app_id", "appservices_user_id")
    starts = AuditEvent.objects.filter(
        action=AuditEvent.Action.ACT_FOR_START, outcome=AuditEvent.Outcome.OK, at__gte=since
    ).values_list(*fields, "detail")
    open_starts = []
    for *start, detail in starts:
        found = _MINUTES.match(detail)
        minutes = int(found.group(1)) if found else LONGEST_ACT_FOR_MINUTES
        if start[1] + timedelta(minutes=minutes) > now:
            open_starts.append(start)
    if not open_starts:
        return 0
    ends = list(
        AuditEvent.objects.filter(
            action__in=_ENDS, id__gt=min(start[0] for start in open_starts)
        ).values_list(*fields, "action")
    )
    return sum(1 for start in open_starts if not any(_ends(end, start) for end in ends))


def _ends(end: tuple, start: tuple) -> bool:
    end_id, _, *end_staff, end_app, end_user, action = end
    start_id, _, *start_staff, start_app, start_user = start
    if end_id <= start_id or end_staff != start_staff:
        return False
    return action in _ENDS_ANY or (end_app, end_user) == (start_app, start_user)


class ActForConnections(Collector):
    """keyadmin_act_for_active_connections, from the audit trail at each scrape."""

    def collect(self) -> Iterator[Metric]:
        try:
            active = active_act_for_connections()
        except DatabaseError as exc:
            # Left out, not reported as 0: an alert on `absent()` tells the two apart.
            logger.warning("metrics: act-for connections not counted: %s", type(exc).__name__)
            return
        yield GaugeMetricFamily(
            "keyadmin_act_for_active_connections",
            "Act-for connections open now, from the audit trail (the same on every instance).",
            value=active,
        )


ACT_FOR = ActForConnections()  # in no registry: asked beside whichever one answers


# CSRF-exempt: the view changes nothing, and a CSRF refusal (403) of a POST would otherwise tell a
# stranger that this page exists where any unknown page answers 404.
@csrf_exempt
@never_cache
def scrape(request: HttpRequest) -> HttpResponse:
    if not _may_scrape(request):
        raise Http404()
    if request.method not in ("GET", "HEAD"):
        return HttpResponseNotAllowed(["GET", "HEAD"])
    registry = _registry()
    body = generate_latest(registry) + generate_latest(ACT_FOR)
    return HttpResponse(body, content_type=CONTENT_TYPE_LATEST)
