from django.apps import AppConfig


class KeyadminConfig(AppConfig):
    name = "keyadmin"
    default_auto_field = "django.db.models.BigAutoField"
