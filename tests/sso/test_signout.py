from __future__ import annotations

import pytest
from django.contrib.sessions.models import Session

from tests.support import KEYS_URL, connected

pytestmark = pytest.mark.staff_sso

URL = "/sign-out/"


def test_it_revokes_flushes_and_clears_the_browser(client, emulator, user_credentials):
    connected(client, user_credentials)
    emulator.reset_stats()

    response = client.post(URL)

    assert response.status_code == 200
    assert response["Clear-Site-Data"] == '"cache", "storage"'
    assert "no-store" in response["Cache-Control"]
    assert "You are signed out" in response.content.decode()
    assert emulator.request_count("session_logout") == 1
    assert not Session.objects.exists()
    assert client.get(KEYS_URL)["Location"].startswith("/oidc/authenticate/")


def test_it_signs_out_even_when_app_services_is_down(client, emulator, user_credentials):
    connected(client, user_credentials)
    emulator.add_fault(route="session_logout", action="status", status=503)

    response = client.post(URL)

    assert response.status_code == 200
    assert not Session.objects.exists()


def test_it_rejects_get(client, emulator, user_credentials):
    connected(client, user_credentials)

    assert client.get(URL).status_code == 405
    assert client.get(KEYS_URL).status_code == 200
