"""keyadmin's URLs plus the test views that wear keyadmin's guards."""

from __future__ import annotations

from django.urls import path

from keyadmin import urls as keyadmin_urls
from tests.sso import views

urlpatterns = [
    path("_test/whoami/", views.whoami),
    path("_test/remember/", views.remember),
    path("_test/flags/", views.flags),
    path("_test/keys/", views.view_keys),
    path("_test/keys/<str:key_id>/disable/", views.change_key),
    path("_test/trail/", views.read_trail),
    *keyadmin_urls.urlpatterns,
]
