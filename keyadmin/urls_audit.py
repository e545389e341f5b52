"""The audit trail's routes.

Include at the site root: `path("", include("keyadmin.urls_audit"))`.
"""

from __future__ import annotations

from django.urls import path

from keyadmin import audit_views

app_name = "audit"

urlpatterns = [
    path("audit/", audit_views.trail, name="trail"),
    path("audit/export.csv", audit_views.export_csv, name="export"),
]
