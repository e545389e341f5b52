"""The audit trail's routes: the filtered trail and its CSV export (auditors only)."""

from __future__ import annotations

from django.urls import path

from keyadmin.audit import views

app_name = "audit"

urlpatterns = [
    path("audit/", views.trail, name="trail"),
    path("audit/export.csv", views.export_csv, name="export"),
]
