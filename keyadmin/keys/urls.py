"""The dashboard's routes: connecting to an App Services user, the keys page and each action."""

from __future__ import annotations

from django.urls import path, register_converter
from django.views.generic import RedirectView

from keyadmin.keys import bulk, connect, lifecycle, lockdown, views
from keyadmin.keys.converters import KeyIdConverter

# A key id that is not 24 lower-case hex digits never reaches a view (nor App Services): 404.
register_converter(KeyIdConverter, "keyid")

app_name = "keyadmin"

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="keyadmin:keys"), name="home"),
    path("appservices/sign-in/", connect.appservices_signin, name="appservices-signin"),
    path("appservices/sign-out/", connect.appservices_signout, name="appservices-signout"),
    path("appservices/act-for/", connect.act_for_start, name="act-for-start"),
    path("appservices/act-for/end/", connect.act_for_end, name="act-for-end"),
    path(
        "appservices/act-for/delete-user/",
        connect.act_for_delete_user,
        name="act-for-delete-user",
    ),
    path("keys/", views.key_list, name="keys"),
    path("keys/new/", views.create_key, name="key-create"),
    path("keys/<keyid:key_id>/", views.key_detail, name="key-detail"),
    path("keys/<keyid:key_id>/enable/", views.enable_key, name="key-enable"),
    path("keys/<keyid:key_id>/disable/", views.disable_key, name="key-disable"),
    path("keys/<keyid:key_id>/delete/", views.delete_key, name="key-delete"),
    path("keys/bulk/", bulk.bulk, name="keys-bulk"),
    path("keys/lock-down/", lockdown.lockdown_confirm, name="lockdown-confirm"),
    path("keys/lock-down/run/", lockdown.lockdown, name="lockdown"),
    path(
        "keys/lock-down/<uuid:batch_id>/undo/", lockdown.undo_confirm, name="lockdown-undo-confirm"
    ),
    path("keys/lock-down/<uuid:batch_id>/undo/run/", lockdown.undo, name="lockdown-undo"),
    path("keys/<keyid:key_id>/note/", lifecycle.edit_note, name="key-note"),
    path("keys/<keyid:key_id>/reviewed/", lifecycle.mark_reviewed, name="key-reviewed"),
    path("keys/<keyid:key_id>/rotate/", lifecycle.rotate_key, name="key-rotate"),
]
