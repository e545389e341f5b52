"""A staff session's App Services token: readable across a key rotation, revoked upstream when the
session ends by age or by idleness, and never left behind in the session table."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet, InvalidToken
from django.contrib.sessions.models import Session

from keyadmin.appservices.connection import SESSION_KEY
from tests.support import KEYS_URL, SIGNIN_URL, connect, connected

pytestmark = pytest.mark.staff_sso

OLD_KEY = Fernet.generate_key().decode()
NEW_KEY = Fernet.generate_key().decode()


def stored_token(client) -> str:
    session = Session.objects.get(session_key=client.session.session_key)
    return session.get_decoded()[SESSION_KEY]["refresh"]


def test_a_rotated_token_key_keeps_sessions_readable(client, emulator, settings, user_credentials):
    settings.KEYADMIN_TOKEN_KEY = OLD_KEY
    connected(client, user_credentials)

    settings.KEYADMIN_TOKEN_KEY = NEW_KEY
    settings.KEYADMIN_TOKEN_KEY_PREVIOUS = [OLD_KEY]
    response = client.get(KEYS_URL)

    assert response.status_code == 200
    assert user_credentials[0] in response.content.decode()


def test_a_session_under_the_previous_key_is_still_revoked_upstream(
    client, emulator, settings, user_credentials
):
    settings.KEYADMIN_TOKEN_KEY = OLD_KEY
    connected(client, user_credentials)
    settings.KEYADMIN_TOKEN_KEY = NEW_KEY
    settings.KEYADMIN_TOKEN_KEY_PREVIOUS = [OLD_KEY]
    emulator.reset_stats()

    client.post("/appservices/sign-out/")

    assert emulator.request_count("session_logout") == 1


def test_new_tokens_are_encrypted_with_the_current_key_only(
    client, emulator, settings, user_credentials
):
    settings.KEYADMIN_TOKEN_KEY = NEW_KEY
    settings.KEYADMIN_TOKEN_KEY_PREVIOUS = [OLD_KEY]

    connected(client, user_credentials)

    token = stored_token(client)
    assert Fernet(NEW_KEY).decrypt(token.encode())
    with pytest.raises(InvalidToken):
        Fernet(OLD_KEY).decrypt(token.encode())


def test_a_token_key_no_longer_configured_means_signing_in_again(
    client, emulator, settings, user_credentials
):
    settings.KEYADMIN_TOKEN_KEY = OLD_KEY
    connected(client, user_credentials)
    settings.KEYADMIN_TOKEN_KEY = NEW_KEY

    assert client.get(KEYS_URL)["Location"] == SIGNIN_URL
    connect(client, user_credentials)
    assert client.get(KEYS_URL).status_code == 200
