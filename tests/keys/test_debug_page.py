"""With DEBUG on, Django's technical 500 page shows every frame's local variables and the POST
data. keyadmin's reporter filter keeps hiding what is marked sensitive then too: an uncaught
error in any upstream path shows neither the App Services password, nor the refresh token
(decrypted or as the session stores it), nor a key's secret."""

from __future__ import annotations

import html

import pytest
from cryptography.fernet import Fernet
from django.conf import settings as django_settings
from django.test import Client
from django.views.debug import get_default_exception_reporter_filter

from keyadmin.appservices import client as appservices_client
from keyadmin.reporting import ReporterFilter
from tests.support import (
    CREATE_URL,
    SIGNIN_URL,
    FormClient,
    connected,
    create_key,
    key_url,
    row_post,
)


def _sign_in(client: Client, credentials, key_id: str):
    email, password = credentials
    return client.post(
        SIGNIN_URL, {"provider": "local-userpass", "email": email, "password": password}
    )


# path: (the upstream route whose answer fails to be read, the staff action that asks for it)
PATHS = {
    "signin": ("POST /app/{app}/auth/providers/local-userpass/login", _sign_in),
    "profile": ("GET /auth/profile", _sign_in),
    "list": ("GET /auth/api_keys", lambda c, creds, key_id: c.get("/keys/")),
    "detail": ("GET /auth/api_keys/{id}", lambda c, creds, key_id: c.get(key_url(key_id))),
    "create": ("POST /auth/api_keys", lambda c, creds, key_id: c.post(CREATE_URL, {"name": "n"})),
    "enable": (
        "PUT /auth/api_keys/{id}/enable",
        lambda c, creds, key_id: c.post(key_url(key_id, "enable"), row_post(key_id, "debug")),
    ),
    "disable": (
        "PUT /auth/api_keys/{id}/disable",
        lambda c, creds, key_id: c.post(key_url(key_id, "disable"), row_post(key_id, "debug")),
    ),
    "delete": (
        "DELETE /auth/api_keys/{id}",
        lambda c, creds, key_id: c.post(
            key_url(key_id, "delete"), row_post(key_id, "debug", confirm="1")
        ),
    ),
}


def test_the_reporter_filter_is_the_one_django_uses():
    assert isinstance(get_default_exception_reporter_filter(), ReporterFilter)


@pytest.mark.parametrize("path", PATHS)
def test_the_debug_page_of_an_upstream_failure_shows_no_credential(
    emulator, user_credentials, settings, monkeypatch, path
):
    client = connected(FormClient(raise_request_exception=False), user_credentials)
    stored = client.session["appservices"]["refresh"]
    refresh_token = Fernet(django_settings.KEYADMIN_TOKEN_KEY).decrypt(stored.encode()).decode()
    key_id = create_key(client, "debug")
    secrets_seen: list[str] = []
    real_read = appservices_client._read
    failing_route, act = PATHS[path]

    def read_then_fail(status, content_type, content, method, route, **kwargs):
        if b'"key"' in content:
            secrets_seen.append(appservices_client._parse(content)["key"])
        if route == failing_route:
            raise RuntimeError("induced failure after the answer arrived")
        return real_read(status, content_type, content, method, route, **kwargs)

    monkeypatch.setattr(appservices_client, "_read", read_then_fail)
    settings.DEBUG = True

    response = act(client, user_credentials, key_id)

    page = response.content.decode()
    assert response.status_code == 500
    assert "induced failure after the answer arrived" in page, "not the technical 500 page"
    assert "Local vars" in page or "Local Vars" in page
    if path == "create":
        assert secrets_seen, "the create answer was not read"
    searched = [page, html.unescape(page)]
    for secret in [user_credentials[1], refresh_token, stored, *secrets_seen]:
        assert all(secret not in text for text in searched), f"{path}: {secret[:6]}… shown"


def test_an_identity_proxys_signed_header_is_hidden_in_error_reports(rf):
    jwt_like = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzYW0ifQ.c2lnbmF0dXJl"
    request = rf.get(
        "/keys/",
        HTTP_CF_ACCESS_JWT_ASSERTION=jwt_like,
        HTTP_X_GOOG_IAP_JWT_ASSERTION=jwt_like,
        HTTP_X_POMERIUM_JWT_ASSERTION=jwt_like,
    )

    meta = ReporterFilter().get_safe_request_meta(request)

    assert jwt_like not in repr(meta)
    assert meta["HTTP_CF_ACCESS_JWT_ASSERTION"] == ReporterFilter.cleansed_substitute
