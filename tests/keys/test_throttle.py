"""Sign-in throttling: guesses past a limit are refused in place and never reach App Services.

Limits are lowered per test (settings); every loop is a handful of attempts. Time passing is
simulated by moving the stored counters back, never by sleeping.
"""

from __future__ import annotations

import re
import secrets
from datetime import timedelta

import pytest
from cryptography.fernet import Fernet

from keyadmin import appservices
from keyadmin.models import AuditEvent
from tests.support import (
    HTMX,
    KEYS_URL,
    SIGNIN_URL,
    FormClient,
    connect,
    create_key,
    sign_in_staff,
)

TOO_MANY = re.compile(r"Too many sign-in attempts\. Try again in (\d+) s\.")


@pytest.fixture
def limits(settings):
    settings.KEYADMIN_SIGNIN_WINDOW_SECONDS = 900
    settings.KEYADMIN_SIGNIN_MAX_BLOCK_SECONDS = 3600
    settings.KEYADMIN_SIGNIN_TARGET_LIMIT = 3
    settings.KEYADMIN_SIGNIN_STAFF_LIMIT = 100
    settings.KEYADMIN_SIGNIN_ADDRESS_LIMIT = 100
    settings.KEYADMIN_SIGNIN_ANONYMOUS_LIMIT = 100
    return settings


def password_post(client, email: str, password: str, **kwargs):
    return client.post(
        SIGNIN_URL, {"provider": "local-userpass", "email": email, "password": password}, **kwargs
    )


def throttled_rows() -> int:
    return AuditEvent.objects.filter(action="throttled").count()


def time_passes(seconds: int) -> None:
    """Every stored throttle counter ages by `seconds`, as if that much time went by."""
    from keyadmin.models import SignInThrottle

    delta = timedelta(seconds=seconds)
    for row in SignInThrottle.objects.all():
        row.window_start -= delta
        row.expires_at -= delta
        if row.blocked_until is not None:
            row.blocked_until -= delta
        row.save()


def test_guesses_past_the_target_limit_get_429_and_never_reach_app_services(
    client, emulator, user_credentials, limits
):
    sign_in_staff(client)
    email, password = user_credentials
    emulator.reset_stats()

    answers = [password_post(client, email, f"guess-{n}") for n in range(10)]

    assert [a.status_code for a in answers] == [200] * 3 + [429] * 7
    assert emulator.request_count("login") == 3
    for answer in answers[3:]:
        html = answer.content.decode()
        waited = TOO_MANY.search(html)
        assert waited, html[:2000]
        assert 0 < int(answer["Retry-After"]) <= 900
        assert waited.group(1) == answer["Retry-After"]
        assert 'role="alert"' in html
        assert f'value="{email}"' in html  # the form is still there, filled in
    # The right password is refused too while the block lasts, still without asking upstream.
    assert password_post(client, email, password).status_code == 429
    assert emulator.request_count("login") == 3
    assert client.get(KEYS_URL).status_code == 302  # not connected


def test_a_block_is_audited_once_not_once_per_attempt(client, emulator, user_credentials, limits):
    sign_in_staff(client)
    email, _password = user_credentials

    for n in range(10):
        password_post(client, email, f"guess-{n}")

    (event,) = AuditEvent.objects.filter(action="throttled")
    assert event.outcome == "denied"
    assert event.status == 429
    assert event.staff_name == "Sam Support"
    assert "target" in event.detail
    assert email not in event.detail
    assert AuditEvent.objects.filter(action="appservices-signin", outcome="failed").count() == 3


def test_htmx_gets_the_message_as_a_swapped_429_fragment(
    client, emulator, user_credentials, limits
):
    sign_in_staff(client)
    email, _password = user_credentials
    for n in range(3):
        password_post(client, email, f"guess-{n}")
    emulator.reset_stats()

    answer = password_post(client, email, "guess-htmx", headers=HTMX)

    assert answer.status_code == 429
    assert int(answer["Retry-After"]) > 0
    assert answer["HX-Reswap"] == "none"
    html = answer.content.decode()
    assert TOO_MANY.search(html)
    assert 'hx-swap-oob="innerHTML:#notices"' in html
    assert "<html" not in html  # a fragment, not a page
    assert emulator.request_count() == 0
    # htmx 2 drops 4xx answers unless told otherwise: the page's config swaps a 429.
    page = client.get(SIGNIN_URL).content.decode()
    assert '{"code": "429", "swap": true, "error": false}' in page


def test_the_block_ends_with_the_window_and_the_next_one_is_longer(
    client, emulator, user_credentials, limits
):
    sign_in_staff(client)
    email, password = user_credentials
    for n in range(4):
        first = password_post(client, email, f"guess-{n}")
    assert first.status_code == 429
    first_wait = int(first["Retry-After"])

    time_passes(first_wait + 1)
    again = [password_post(client, email, f"again-{n}") for n in range(4)]

    assert [a.status_code for a in again] == [200, 200, 200, 429]
    assert int(again[-1]["Retry-After"]) > first_wait  # the backoff doubled
    assert throttled_rows() == 2
    time_passes(int(again[-1]["Retry-After"]) + 1)
    assert password_post(client, email, password).status_code == 302


def test_a_success_resets_the_target_counter(client, emulator, user_credentials, limits):
    limits.KEYADMIN_SIGNIN_TARGET_LIMIT = 3
    sign_in_staff(client)
    email, password = user_credentials
    for n in range(2):
        assert password_post(client, email, f"guess-{n}").status_code == 200

    connect(client, user_credentials)  # third attempt, right password
    answers = [password_post(client, email, f"later-{n}") for n in range(4)]

    # After the success, three more attempts reach App Services before the next block.
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert password_post(client, email, password).status_code == 429


def test_a_good_credential_of_ones_own_does_not_clear_the_staff_count(
    client, emulator, user_credentials, limits
):
    limits.KEYADMIN_SIGNIN_STAFF_LIMIT = 4
    sign_in_staff(client)
    emulator.reset_stats()
    statuses = []
    for round_ in range(5):
        statuses += [
            password_post(client, f"r{round_}-{n}@example.com", "guess").status_code
            for n in range(3)
        ]
        password_post(client, *user_credentials)  # a sign-in that works, between guesses

    # The successes give back only their own attempt: the guesses still add up to the limit.
    assert statuses.count(200) == 4
    assert statuses[4:] == [429] * 11


def test_the_staff_member_is_limited_across_targets(client, emulator, limits):
    limits.KEYADMIN_SIGNIN_STAFF_LIMIT = 4
    sign_in_staff(client)
    emulator.reset_stats()

    answers = [password_post(client, f"u{n}@example.com", "guess") for n in range(6)]

    assert [a.status_code for a in answers] == [200] * 4 + [429] * 2
    assert emulator.request_count("login") == 4
    (event,) = AuditEvent.objects.filter(action="throttled")
    assert "staff" in event.detail


def test_the_client_address_is_limited_across_staff_members(client, emulator, limits):
    limits.KEYADMIN_SIGNIN_ADDRESS_LIMIT = 4
    other = FormClient()
    sign_in_staff(client, name="Sam Support")
    sign_in_staff(other, name="Mo Mallory")
    emulator.reset_stats()

    answers = [
        password_post(browser, f"u{n}@example.com", "guess")
        for n, browser in enumerate([client, other] * 3)
    ]

    assert [a.status_code for a in answers] == [200] * 4 + [429] * 2
    assert emulator.request_count("login") == 4


def test_api_key_guesses_are_limited_per_key(client, emulator, user_credentials, limits):
    connect_and_key = FormClient()
    sign_in_staff(connect_and_key, name="Owner")
    connect(connect_and_key, user_credentials)
    create_key(connect_and_key, "guessed")
    sign_in_staff(client)
    emulator.reset_stats()
    guessed = secrets.token_hex(32)

    answers = [client.post(SIGNIN_URL, {"provider": "api-key", "key": guessed}) for _ in range(5)]

    assert [a.status_code for a in answers] == [200] * 3 + [429] * 2
    assert emulator.request_count("login") == 3
    assert TOO_MANY.search(answers[-1].content.decode())
    assert guessed not in answers[-1].content.decode()


def test_anonymous_sign_ins_are_limited_per_staff_member(client, emulator, limits):
    limits.KEYADMIN_SIGNIN_ANONYMOUS_LIMIT = 3
    sign_in_staff(client)
    emulator.reset_stats()

    answers = [client.post(SIGNIN_URL, {"provider": "anon-user"}) for _ in range(5)]

    assert [a.status_code for a in answers] == [302] * 3 + [429] * 2
    assert emulator.request_count("login") == 3
    assert TOO_MANY.search(answers[-1].content.decode())
    assert throttled_rows() == 1


def test_an_app_services_failure_is_not_counted_as_a_guess(
    client, emulator, user_credentials, limits
):
    sign_in_staff(client)
    email, _password = user_credentials
    emulator.add_fault(route="login", action="status", status=503)

    answers = [password_post(client, email, "whatever") for _ in range(5)]

    assert [a.status_code for a in answers] == [200] * 5
    assert not any(TOO_MANY.search(a.content.decode()) for a in answers)
    emulator.clear_faults()
    connect(client, user_credentials)


def test_a_refusal_worded_otherwise_still_counts(client, emulator, user_credentials, limits):
    sign_in_staff(client)
    email, _password = user_credentials
    emulator.add_fault(route="login", action="status", status=400)

    answers = [password_post(client, email, f"guess-{n}") for n in range(5)]

    assert [a.status_code for a in answers] == [200] * 3 + [429] * 2


def test_a_new_sign_in_while_connected_revokes_the_previous_refresh_token(
    client, emulator, user_credentials, settings
):
    sign_in_staff(client)
    connect(client, user_credentials)
    stored = client.session["appservices"]
    refresh = Fernet(settings.KEYADMIN_TOKEN_KEY).decrypt(stored["refresh"].encode()).decode()
    old = appservices.UserSession(stored["hostname"], refresh)
    old.list_api_keys()  # valid now
    second = (f"second-{secrets.token_hex(4)}@example.com", secrets.token_urlsafe(12))
    emulator.create_user(*second)

    connect(client, second)  # "Switch user", then sign in as someone else

    with pytest.raises(appservices.SessionEnded):
        old.list_api_keys()
    assert second[0] in client.get(KEYS_URL).content.decode()
