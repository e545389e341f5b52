from django.apps import AppConfig

from keyadmin import metrics
from keyadmin.appservices.client import UPSTREAM_OBSERVERS


class KeyadminConfig(AppConfig):
    name = "keyadmin"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        if metrics.observe_upstream not in UPSTREAM_OBSERVERS:
            UPSTREAM_OBSERVERS.append(metrics.observe_upstream)
