from __future__ import annotations

import logging
import re
import time

import pytest
from django.contrib.sessions.models import Session

from keyadmin.keys import views as keys_views
from tests.support import (
    CREATE_URL,
    HTMX,
    KEYS_URL,
    SIGNIN_URL,
    connected,
    connected_anonymously,
    create_key,
    rendered_fields,
)


def secret_in(html: str) -> str:
    found = re.search(
        r'<code id="secret-value-[0-9a-f]{24}" class="secret-value" translate="no">'
        r"([^<]+)</code>",
        html,
    )
    assert found, html[:3000]
    return found.group(1)


def test_it_creates_with_one_request_and_answers_panel_and_row(
    client, emulator, user_credentials, caplog
):
    connected(client, user_credentials)
    emulator.reset_stats()
    caplog.set_level(logging.DEBUG)

    response = client.post(CREATE_URL, {"name": "ci-runner"}, headers=HTMX)

    assert response.status_code == 200
    assert emulator.request_count() == 1
    assert emulator.request_count("keys_create") == 1
    assert "no-store" in response["Cache-Control"]
    html = response.content.decode()
    [key] = emulator.keys_of(user_credentials[0])
    secret = secret_in(html)
    # main swap: a fresh, empty form; out of band: the panel first in #new-secrets, the row last
    assert html.lstrip().startswith('<form id="create-form"')
    assert 'name="name" id="id_name" value=""' in html
    assert '<div hx-swap-oob="afterbegin:#new-secrets">' in html
    assert f'<section id="secret-{key["_id"]}" class="secret-panel" hx-history="false"' in html
    assert '<template><tbody hx-swap-oob="beforeend:#key-rows">' in html
    assert f'<tr id="key-{key["_id"]}"' in html
    assert "will not be shown again" in html
    assert "data-dismiss-secret" in html
    # never in the title, a live region, an input, the session, the log
    assert html.count(secret) == 1
    assert not re.search(r"aria-live[^>]*>[^<]*" + secret, html)
    assert f'value="{secret}"' not in html
    assert all(secret not in str(s.get_decoded()) for s in Session.objects.all())
    assert secret not in caplog.text
    assert response.wsgi_request.sensitive_post_parameters == "__ALL__"


def test_it_answers_without_javascript_with_the_secret_page(client, emulator, user_credentials):
    connected(client, user_credentials)
    emulator.reset_stats()

    response = client.post(CREATE_URL, {"name": "ci-runner"})

    assert response.status_code == 200  # no redirect: the secret cannot be carried over one
    assert emulator.request_count() == 1  # and no list call
    html = response.content.decode()
    assert "<html" in html
    assert "<title>Key created · keyadmin</title>" in html
    secret = secret_in(html)
    assert secret not in html.split("<main")[0]
    assert 'href="/keys/">I have stored it' in html
    assert "no-store" in response["Cache-Control"]
    assert client.get(KEYS_URL).content.decode().count(secret) == 0  # no message carries it


@pytest.mark.parametrize("name", ["my key", "$()!", "é", "x" * 65, ""])
def test_it_refuses_bad_names_before_any_request(client, emulator, user_credentials, name):
    connected(client, user_credentials)
    emulator.reset_stats()

    fragment = client.post(CREATE_URL, {"name": name}, headers=HTMX)
    page = client.post(CREATE_URL, {"name": name})

    assert emulator.request_count() == 0
    assert fragment.status_code == page.status_code == 200
    assert "<html" in page.content.decode()
    html = fragment.content.decode()
    assert html.lstrip().startswith('<form id="create-form"')
    assert 'aria-invalid="true" data-ka-focus' in html
    assert 'id="id_name_error"' in html


def an_hour_later(monkeypatch) -> None:
    """Existing keys look an hour old: a name clash is then not this form sent twice."""
    monkeypatch.setattr(keys_views, "_clock", lambda: time.time() + 3600)


def test_it_says_when_the_name_is_taken_and_keeps_it(
    client, emulator, user_credentials, monkeypatch
):
    connected(client, user_credentials)
    create_key(client, "ci-runner")
    an_hour_later(monkeypatch)
    emulator.reset_stats()

    response = client.post(CREATE_URL, {"name": "ci-runner"}, headers=HTMX)

    assert emulator.request_count("keys_create") == 1
    html = response.content.decode()
    assert "already has a key with that name" in html
    assert 'value="ci-runner"' in html
    assert "secret-panel" not in html
    assert "already has a key" in client.post(CREATE_URL, {"name": "ci-runner"}).content.decode()


def test_it_says_when_the_user_has_twenty_keys(client, emulator, user_credentials):
    connected(client, user_credentials)
    for number in range(20):
        create_key(client, f"key-{number}")

    response = client.post(CREATE_URL, {"name": "key-20"}, headers=HTMX)

    html = response.content.decode()
    assert "20 API keys, the most App Services allows" in html
    assert 'value="key-20"' in html
    assert 'id="id_name_error"' in html


@pytest.mark.parametrize(
    ("fault", "says"),
    [
        # A lost answer is followed by one list request (tests/keys/test_lost_create.py).
        ({"action": "status", "status": 500}, "the key was not created"),
        ({"action": "html", "status": 502}, "the key was not created"),
        ({"action": "drop", "when": "after"}, "was created but its secret was lost in transit"),
        ({"action": "status", "status": 403}, "does not let this session"),
    ],
)
def test_it_shows_upstream_failures_in_the_form(client, emulator, user_credentials, fault, says):
    connected(client, user_credentials)
    emulator.add_fault(route="keys_create", times=1, **fault)
    emulator.reset_stats()

    response = client.post(CREATE_URL, {"name": "ci-runner"}, headers=HTMX)

    assert response.status_code == 200
    assert emulator.request_count("keys_create") == 1  # never retried
    html = response.content.decode()
    assert 'class="banner banner-error" role="alert"' in html
    assert says in html
    assert 'value="ci-runner"' in html
    assert "secret-panel" not in html


def test_it_reports_a_timeout_without_creating_twice(client, emulator, user_credentials, settings):
    connected(client, user_credentials)
    settings.APPSERVICES_TIMEOUT = (1, 0.5)
    emulator.add_fault(route="keys_create", action="delay", delay_ms=1500, times=1)
    emulator.reset_stats()

    response = client.post(CREATE_URL, {"name": "ci-runner"})

    assert response.status_code == 200
    html = response.content.decode()
    # The key is made only after the 1.5 s delay: the one list request does not find it yet.
    assert "so it was most likely not created" in html
    assert "press “Create key” to try again" in html
    assert emulator.request_count("keys_create") == 1
    assert emulator.request_count("keys_list") == 1


def test_it_sends_an_ended_session_back_to_sign_in(client, emulator, user_credentials):
    connected(client, user_credentials)
    emulator.add_fault(route="keys_create", action="status", status=401)

    response = client.post(CREATE_URL, {"name": "ci-runner"}, headers=HTMX)

    assert response["HX-Redirect"] == SIGNIN_URL


def test_it_refuses_sessions_that_cannot_have_keys(client, emulator):
    connected_anonymously(client, emulator)

    response = client.post(CREATE_URL, {"name": "ci-runner"}, headers=HTMX)

    assert emulator.request_count() == 0
    assert "does not let this session manage API keys" in response.content.decode()


def test_it_rejects_get(client, emulator, user_credentials):
    connected(client, user_credentials)

    assert client.get(CREATE_URL).status_code == 405


def test_a_form_sent_twice_without_javascript_offers_to_delete_the_unseen_key(
    client, emulator, user_credentials
):
    connected(client, user_credentials)
    form = {**rendered_fields(client.get(KEYS_URL).content.decode(), "create-form")}
    form["name"] = "sent-twice"
    first = client.post(CREATE_URL, form)  # the answer the browser dropped
    key_id = re.search(r'id="secret-value-([0-9a-f]{24})"', first.content.decode()).group(1)
    emulator.reset_stats()

    second = client.post(CREATE_URL, form)  # the very same form, sent again

    page = second.content.decode()
    assert second.status_code == 200
    assert "was created moments ago" in page
    assert f'formaction="/keys/{key_id}/delete/"' in page
    assert 'class="secret-value"' not in page
    assert emulator.request_count("keys_create") == 1
    assert emulator.request_count("keys_list") == 1


def test_a_name_taken_long_ago_is_only_a_field_error(
    client, emulator, user_credentials, monkeypatch
):
    connected(client, user_credentials)
    create_key(client, "old-name")
    an_hour_later(monkeypatch)

    page = client.post(CREATE_URL, {"name": "old-name"}, headers=HTMX).content.decode()

    assert "already has a key with that name" in page
    assert "was created moments ago" not in page
