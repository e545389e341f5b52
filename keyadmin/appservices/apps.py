"""The App Services apps staff may work on: the registry views, forms and the audit trail use.

The apps are loaded and checked once at start-up (`keyadmin.appsfile.load_apps`, called by
settings.py into `settings.KEYADMIN_APPS`): from KEYADMIN_APPS_FILE, or the single app of the
APPSERVICES_* variables. Here they are only looked up, always from the current settings, so a
test's settings override applies at once. The first app is the default one.
"""

from __future__ import annotations

from django.conf import settings

from keyadmin.appsfile import ENVIRONMENTS, AppConfig, SigningSecret

__all__ = [
    "ENVIRONMENTS",
    "AppConfig",
    "SigningSecret",
    "all_apps",
    "app",
    "app_for_id",
    "default_app",
]


def all_apps() -> tuple[AppConfig, ...]:
    """Every configured app, in the order of the file (the default one first)."""
    return tuple(settings.KEYADMIN_APPS)


def app(key: str) -> AppConfig | None:
    """The app whose `key` this is, or None: a key from a URL or form is never trusted as is."""
    for candidate in settings.KEYADMIN_APPS:
        if candidate.key == key:
            return candidate
    return None


def app_for_id(app_id: str) -> AppConfig | None:
    """The app with this App Services app id, or None."""
    for candidate in settings.KEYADMIN_APPS:
        if candidate.app_id == app_id:
            return candidate
    return None


def default_app() -> AppConfig:
    """The app shown when staff have not picked one: the first configured."""
    return settings.KEYADMIN_APPS[0]
