"""Which staff sign-in mode is configured (KEYADMIN_SSO), and the issuer its sessions belong to.

The lowest layer of `keyadmin.sso`: settings only, so roles, sources and guards can all ask.
"""

from __future__ import annotations

from django.conf import settings

DEV_ISSUER = "urn:keyadmin:dev"  # never a real provider's issuer (those are https URLs)


def dev_sign_in_enabled() -> bool:
    return settings.DEBUG and settings.KEYADMIN_SSO == "dev"


def configured_issuer() -> str | None:
    """The issuer every staff session must belong to in the current mode (None: no mode)."""
    mode = settings.KEYADMIN_SSO
    if mode == "dev":
        return DEV_ISSUER
    if mode == "oidc":
        return settings.KEYADMIN_OIDC_ISSUER
    if mode in ("remote-user", "assertion"):
        return settings.KEYADMIN_SSO_ISSUER
    return None
