from __future__ import annotations

import pytest

from tests.support import (
    HTMX,
    KEYS_URL,
    SIGNIN_URL,
    FormClient,
    connected_with_key,
    key_url,
    of,
    row_post,
)


@pytest.fixture
def key_id(client, emulator, user_credentials) -> str:
    return connected_with_key(client, emulator, user_credentials)


def stored(emulator, user_credentials, key_id) -> dict:
    return next(key for key in emulator.keys_of(user_credentials[0]) if key["_id"] == key_id)


def test_it_disables_in_place_with_one_request(client, emulator, user_credentials, key_id):
    response = client.post(key_url(key_id, "disable"), row_post(key_id, "ci-runner"), headers=HTMX)

    assert response.status_code == 200
    assert emulator.request_count() == 1
    assert emulator.request_count("keys_disable") == 1
    assert stored(emulator, user_credentials, key_id)["disabled"] is True
    html = response.content.decode()
    assert html.lstrip().startswith(f'<tr id="key-{key_id}"')
    assert 'data-status="disabled"' in html
    assert '<span class="badge badge-off">Disabled</span>' in html
    assert f'hx-post="/keys/{key_id}/enable/"' in html
    assert 'data-ka-focus>Enable<span class="vh"> ci-runner</span>' in html  # focus stays put
    assert '<template><div hx-swap-oob="innerHTML:#notices">' in html
    assert f"Key “ci-runner” {of(user_credentials[0])} disabled" in html


def test_it_enables_in_place_with_one_request(client, emulator, user_credentials, key_id):
    client.post(key_url(key_id, "disable"), row_post(key_id, "ci-runner"), headers=HTMX)
    emulator.reset_stats()

    response = client.post(
        key_url(key_id, "enable"), row_post(key_id, "ci-runner", disabled=True), headers=HTMX
    )

    assert emulator.request_count() == 1
    assert emulator.request_count("keys_enable") == 1
    assert stored(emulator, user_credentials, key_id)["disabled"] is False
    assert '<span class="badge badge-on">Enabled</span>' in response.content.decode()


def test_it_redirects_without_javascript(client, emulator, user_credentials, key_id):
    response = client.post(key_url(key_id, "disable"), row_post(key_id, "ci-runner"))

    assert response.status_code == 302
    assert response["Location"] == KEYS_URL
    assert emulator.request_count() == 1
    assert (
        f"Key “ci-runner” {of(user_credentials[0])} disabled"
        in client.get(KEYS_URL).content.decode()
    )


def test_it_shows_the_id_when_the_posted_name_is_not_a_key_name(client, emulator, key_id):
    response = client.post(key_url(key_id, "disable"), row_post(key_id, "<b>ci</b>"), headers=HTMX)

    html = response.content.decode()
    assert "<b>ci</b>" not in html
    assert f'translate="no">{key_id}</a>' in html
    assert 'data-name=""' in html


def test_it_drops_the_row_of_a_key_deleted_elsewhere(client, emulator, key_id):
    client.post(key_url(key_id, "delete"), row_post(key_id, "ci-runner", confirm="1"))
    emulator.reset_stats()

    response = client.post(key_url(key_id, "disable"), row_post(key_id, "ci-runner"), headers=HTMX)

    assert response.status_code == 200
    assert emulator.request_count() == 1
    html = response.content.decode()
    assert "<tr" not in html  # outerHTML with nothing: the row goes
    assert "notice-warning" in html
    assert "no longer exists" in html


@pytest.mark.parametrize(
    ("fault", "says"),
    [
        ({"action": "status", "status": 500}, "internal error (HTTP 500)"),
        ({"action": "html"}, "error page"),
        ({"action": "status", "status": 403}, "does not let this session"),
    ],
)
def test_it_shows_failures_in_the_row_with_retry(client, emulator, key_id, fault, says):
    emulator.add_fault(route="keys_disable", **fault)

    response = client.post(key_url(key_id, "disable"), row_post(key_id, "ci-runner"), headers=HTMX)

    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith(f'<tr id="key-{key_id}" class="key-row has-error"')
    assert 'data-status="enabled"' in html  # unchanged: the state the page showed
    assert says in html
    assert f'<button type="submit" form="toggle-{key_id}"' in html


def test_it_reports_a_timeout_in_the_row(client, emulator, key_id, settings):
    settings.APPSERVICES_TIMEOUT = (1, 0.5)
    emulator.add_fault(route="keys_disable", action="delay", delay_ms=1500, times=1)

    response = client.post(key_url(key_id, "disable"), row_post(key_id, "ci-runner"), headers=HTMX)

    assert "did not answer in time" in response.content.decode()
    assert emulator.request_count("keys_disable") == 1


def test_it_reports_failures_without_javascript_as_a_message(
    client, emulator, user_credentials, key_id
):
    emulator.add_fault(route="keys_disable", action="status", status=503)

    response = client.post(key_url(key_id, "disable"), row_post(key_id, "ci-runner"))

    assert response["Location"] == KEYS_URL
    emulator.clear_faults()
    assert f"Key “ci-runner” {of(user_credentials[0])}: App Services had an internal error" in (
        client.get(KEYS_URL).content.decode()
    )


def test_it_sends_an_ended_session_back_to_sign_in(client, emulator, key_id):
    emulator.add_fault(route="keys_disable", action="status", status=401)

    htmx = client.post(key_url(key_id, "disable"), row_post(key_id, "ci-runner"), headers=HTMX)

    assert htmx["HX-Redirect"] == SIGNIN_URL
    assert client.get(KEYS_URL)["Location"] == SIGNIN_URL


def test_it_needs_post_and_csrf(client, emulator, user_credentials, key_id):
    strict = FormClient(enforce_csrf_checks=True)
    strict.cookies = client.cookies

    assert client.get(key_url(key_id, "disable")).status_code == 405
    assert strict.post(key_url(key_id, "disable"), row_post(key_id, "x")).status_code == 403
    assert emulator.request_count() == 0


def test_it_404s_malformed_ids_before_any_request(client, emulator, key_id):
    for bad in ("..%2Fsession", key_id.upper(), key_id[:-1], key_id + "0"):
        assert client.post(f"/keys/{bad}/disable/").status_code == 404
    assert emulator.request_count() == 0
