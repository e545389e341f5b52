"""Apps that act for customers, against local App Services servers that trust an HS256 key."""

from __future__ import annotations

import secrets
from pathlib import Path

from cryptography.fernet import Fernet
from django.conf import settings as django_settings

from keyadmin import appservices
from keyadmin.appservices import UserSession
from keyadmin.appsfile import AppConfig, SigningSecret
from keyadmin.emulator.process import EmulatorProcess

SECRET = "act-for-test-signing-key-" + "x" * 20  # 45 bytes: within App Services' 32-512
ACT_FOR_URL = "/appservices/act-for/"
END_URL = "/appservices/act-for/end/"


def start_customer_server(app_id: str, db_path: Path) -> EmulatorProcess:
    return EmulatorProcess(
        app_id, db_path, "--custom-token-secret", SECRET, "--custom-token-metadata", "name=name"
    ).start()


def act_for_app(server: EmulatorProcess, key: str, **changes) -> AppConfig:
    fields = {
        "key": key,
        "name": f"Shop {key}",
        "app_id": server.app_id,
        "base_url": server.url,
        "allowed_hosts": ("127.0.0.1",),
        "environment": "staging",
        "act_for_enabled": True,
        "customer_pattern": r"^cus_[A-Za-z0-9]+$",
        "ticket_pattern": r"^SUP-\d+$",
        "max_act_for_minutes": 30,
        "jwt_algorithm": "HS256",
        "jwt_hs256_secret": SigningSecret(SECRET.encode()),
        **changes,
    }
    return AppConfig(**fields)


def act_for(client, app_key: str, customer: str, ticket: str = "SUP-1", minutes: str = "15"):
    return client.post(
        ACT_FOR_URL,
        {"app": app_key, "customer_id": customer, "ticket": ticket, "minutes": minutes},
    )


def stored_refresh_token(client) -> tuple[str, str]:
    stored = client.session["appservices"]
    token = Fernet(django_settings.KEYADMIN_TOKEN_KEY).decrypt(stored["refresh"].encode())
    return stored["hostname"], token.decode()


def still_valid(hostname: str, refresh_token: str) -> bool:
    try:
        UserSession(hostname, refresh_token, allowed_hosts=("127.0.0.1",)).list_api_keys()
    except appservices.SessionEnded:
        return False
    return True


def customer_id() -> str:
    return "cus_" + secrets.token_hex(4)
