"""Staff sign-in and sign-out, the OIDC login (404 in other modes), the bridge's JWKS (404 when
the bridge is off) and `/signed-out/`, where the identity provider returns after its sign-out."""

from __future__ import annotations

from django.urls import path

from keyadmin.sso import views

app_name = "sso"

urlpatterns = [
    path("sign-in/", views.staff_signin, name="staff-signin"),
    path("sign-out/", views.signout, name="signout"),
    path(".well-known/keyadmin-jwks.json", views.jwks, name="jwks"),
    path("oidc/authenticate/", views.OIDCAuthenticate.as_view(), name="oidc-authenticate"),
    path("oidc/callback/", views.OIDCCallback.as_view(), name="oidc-callback"),
    path("signed-out/", views.signed_out, name="signed-out"),
]
