"""The root URLconf: the dashboard, staff sign-in, the audit trail, health checks, languages."""

from __future__ import annotations

from django.urls import include, path

from keyadmin import health, metrics_views

urlpatterns = [
    path("", include("keyadmin.keys.urls")),
    path("", include("keyadmin.sso.urls")),
    path("", include("keyadmin.audit.urls")),
    # No sign-in, no https redirect, never cached (keyadmin/health.py).
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    # Loopback or a bearer token only; no sign-in, no https redirect (keyadmin/metrics_views.py).
    path("metrics", metrics_views.scrape, name="metrics"),
    # The language switcher in the header posts here (Django's set_language).
    path("i18n/", include("django.conf.urls.i18n")),
]
