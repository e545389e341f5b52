from __future__ import annotations

from django.urls import include, path, register_converter
from django.views.generic import RedirectView

from keyadmin import health, views
from keyadmin.converters import KeyIdConverter

# A key id that is not 24 lower-case hex digits never reaches a view (nor App Services): 404.
register_converter(KeyIdConverter, "keyid")

app_name = "keyadmin"

keyadmin_patterns = [
    path("", RedirectView.as_view(pattern_name="keyadmin:keys"), name="home"),
    path("sign-in/", views.staff_signin, name="staff-signin"),
    path("sign-out/", views.signout, name="signout"),
    path("appservices/sign-in/", views.appservices_signin, name="appservices-signin"),
    path("appservices/sign-out/", views.appservices_signout, name="appservices-signout"),
    path("keys/", views.keys, name="keys"),
    path("keys/new/", views.create_key, name="key-create"),
    path("keys/<keyid:key_id>/", views.key_detail, name="key-detail"),
    path("keys/<keyid:key_id>/enable/", views.enable_key, name="key-enable"),
    path("keys/<keyid:key_id>/disable/", views.disable_key, name="key-disable"),
    path("keys/<keyid:key_id>/delete/", views.delete_key, name="key-delete"),
]

# This module is also ROOT_URLCONF, where `app_name` alone makes no namespace: include() does.
urlpatterns = [
    path("", include((keyadmin_patterns, app_name))),
    path("", include("keyadmin.urls_sso")),
    path("", include("keyadmin.urls_audit")),
    # No sign-in, no https redirect, never cached (keyadmin/health.py).
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    # The language switcher in the header posts here (Django's set_language).
    path("i18n/", include("django.conf.urls.i18n")),
]
