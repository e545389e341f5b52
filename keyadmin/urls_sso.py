"""SSO routes; include at the site root: `path("", include("keyadmin.urls_sso"))`.

`/oidc/...` serve KEYADMIN_SSO=oidc (404 in other modes), the JWKS serves the App Services
bridge (404 when it is off), `/signed-out/` is where the identity provider returns after sign-out.
"""

from __future__ import annotations

from django.urls import path

from keyadmin.sso import oidc, views

app_name = "sso"

urlpatterns = [
    path(".well-known/keyadmin-jwks.json", views.jwks, name="jwks"),
    path("oidc/authenticate/", oidc.Authenticate.as_view(), name="oidc-authenticate"),
    path("oidc/callback/", oidc.Callback.as_view(), name="oidc-callback"),
    path("signed-out/", views.signed_out, name="signed-out"),
]
