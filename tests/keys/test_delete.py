from __future__ import annotations

import pytest

from tests.support import (
    HTMX,
    KEYS_URL,
    SIGNIN_URL,
    connected_with_key,
    key_url,
    of,
    row_post,
)


@pytest.fixture
def key_id(client, emulator, user_credentials) -> str:
    return connected_with_key(client, emulator, user_credentials)


def test_it_deletes_in_place_with_one_request(client, emulator, user_credentials, key_id):
    response = client.post(
        key_url(key_id, "delete"), row_post(key_id, "ci-runner", confirm="1"), headers=HTMX
    )

    assert response.status_code == 200
    assert emulator.request_count() == 1
    assert emulator.request_count("keys_delete") == 1
    assert emulator.keys_of(user_credentials[0]) == []
    html = response.content.decode()
    assert "<tr" not in html
    assert f"Key “ci-runner” {of(user_credentials[0])} deleted." in html
    assert '<template><div hx-swap-oob="innerHTML:#notices">' in html


def test_it_asks_first_without_javascript(client, emulator, user_credentials, key_id):
    response = client.post(key_url(key_id, "delete"), row_post(key_id, "ci-runner"))

    assert response.status_code == 200
    assert emulator.request_count() == 0
    html = response.content.decode()
    assert 'Delete key “<span translate="no">ci-runner</span>”?' in html
    assert "permanent" in html
    assert f'action="/keys/{key_id}/delete/"' in html
    assert '<input type="hidden" name="confirm" value="1">' in html
    assert len(emulator.keys_of(user_credentials[0])) == 1


def test_it_deletes_and_redirects_once_confirmed_without_javascript(
    client, emulator, user_credentials, key_id
):
    response = client.post(key_url(key_id, "delete"), row_post(key_id, "ci-runner", confirm="1"))

    assert response.status_code == 302
    assert response["Location"] == KEYS_URL
    assert emulator.request_count() == 1
    page = client.get(KEYS_URL).content.decode()
    assert f"Key “ci-runner” {of(user_credentials[0])} deleted." in page
    assert f'id="key-{key_id}"' not in page


def test_it_drops_the_row_of_a_key_already_gone(client, emulator, key_id):
    client.post(key_url(key_id, "delete"), row_post(key_id, "ci-runner", confirm="1"))
    emulator.reset_stats()

    response = client.post(
        key_url(key_id, "delete"), row_post(key_id, "ci-runner", confirm="1"), headers=HTMX
    )

    assert emulator.request_count() == 1
    html = response.content.decode()
    assert "<tr" not in html
    assert "no longer exists" in html


def test_it_keeps_the_row_with_the_reason_and_retry(client, emulator, key_id):
    emulator.add_fault(route="keys_delete", action="status", status=502)

    response = client.post(
        key_url(key_id, "delete"),
        row_post(key_id, "ci-runner", disabled=True, confirm="1"),
        headers=HTMX,
    )

    html = response.content.decode()
    assert html.lstrip().startswith(f'<tr id="key-{key_id}" class="key-row has-error"')
    assert 'data-status="disabled"' in html
    assert f'form="delete-{key_id}"' in html
    assert 'role="alert"' in html


def test_it_sends_an_ended_session_back_to_sign_in(client, emulator, key_id):
    emulator.add_fault(route="keys_delete", action="status", status=401)

    response = client.post(key_url(key_id, "delete"), row_post(key_id, "ci-runner", confirm="1"))

    assert response["Location"] == SIGNIN_URL


def test_it_rejects_get(client, emulator, key_id):
    assert client.get(key_url(key_id, "delete")).status_code == 405
    assert emulator.request_count() == 0
