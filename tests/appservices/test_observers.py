"""UPSTREAM_OBSERVERS: told of every exchange by route template and outcome, never an id or URL."""

from __future__ import annotations

import pytest

from keyadmin import appservices, metrics
from keyadmin.appservices import AppServices, UserSession
from keyadmin.appservices.client import UPSTREAM_OBSERVERS


@pytest.fixture
def seen():
    calls: list[tuple[str, str, str, float]] = []
    UPSTREAM_OBSERVERS.append(lambda *call: calls.append(call))
    appservices.forget_locations()
    yield calls
    UPSTREAM_OBSERVERS.pop()
    appservices.forget_locations()


def test_the_metrics_observer_is_registered_when_django_starts():
    assert metrics.observe_upstream in UPSTREAM_OBSERVERS


def test_a_success_is_observed_with_the_route_template_and_status(emulator, user_credentials, seen):
    tokens = AppServices().login_email_password(*user_credentials)
    user = UserSession(tokens.hostname, tokens.refresh_token, tokens.access_token)
    key = user.create_api_key("observed")
    seen.clear()

    user.enable_api_key(key.id)

    assert [call[:3] for call in seen] == [("PUT", "PUT /auth/api_keys/{id}/enable", "204")]
    assert 0 <= seen[0][3] < 10
    observed = repr(seen)
    for secret_or_id in (key.id, key.key, tokens.refresh_token, emulator.url, user_credentials[0]):
        assert secret_or_id not in observed


def test_a_refusal_is_observed_with_its_status(emulator, user_credentials, seen):
    with pytest.raises(appservices.BadCredentials):
        AppServices().login_email_password(user_credentials[0], "not-the-password")

    assert [call[:3] for call in seen] == [
        ("GET", "GET /app/{app}/location", "200"),
        ("POST", "POST /app/{app}/auth/providers/local-userpass/login", "401"),
    ]


def test_a_failure_without_an_answer_is_observed_with_its_kind(seen):
    # Without the `emulator` fixture, keyadmin points at a closed loopback port.
    with pytest.raises(appservices.AppServicesError):
        AppServices().check_location()

    assert [call[:3] for call in seen][-1] == ("GET", "GET /app/{app}/location", "connection")
    assert "127.0.0.1" not in repr(seen)
