"""keyadmin's URLs plus the SSO and audit routes (as the lead will include them) and test views."""

from __future__ import annotations

from django.urls import include, path

from keyadmin import urls as keyadmin_urls
from tests.sso import views

urlpatterns = [
    path("", include("keyadmin.urls_sso")),
    path("", include("keyadmin.urls_audit")),
    path("_test/whoami/", views.whoami),
    path("_test/flags/", views.flags),
    path("_test/keys/", views.view_keys),
    path("_test/keys/<str:key_id>/disable/", views.change_key),
    path("_test/trail/", views.read_trail),
    *keyadmin_urls.urlpatterns,
]
