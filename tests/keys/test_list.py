from __future__ import annotations

import re

import pytest

from tests.support import (
    CREATE_URL,
    HTMX,
    KEYS_URL,
    SIGNIN_URL,
    connected,
    connected_anonymously,
    create_key,
    sign_in_staff,
)


def hidden(html: str, element_id: str) -> bool:
    tag = re.search(rf'<[^>]* id="{element_id}"[^>]*>', html)
    assert tag, element_id
    return " hidden" in tag.group(0)


def test_it_lists_keys_with_one_upstream_request(client, emulator, user_credentials):
    connected(client, user_credentials)
    key_id = create_key(client, "ci-runner")
    emulator.reset_stats()

    response = client.get(KEYS_URL)

    assert response.status_code == 200
    html = response.content.decode()
    assert f'<tr id="key-{key_id}"' in html
    assert f'href="/keys/{key_id}/"' in html  # the name links to the detail page
    assert f'data-copy="{key_id}"' in html  # the copy button copies the full id
    assert key_id[-8:] in html
    assert '<time datetime="' in html
    assert '<span id="key-count">1</span> of 20 keys' in html
    assert hidden(html, "keys-empty")
    assert emulator.request_count() == 1
    assert emulator.request_count("keys_list") == 1


def test_it_shows_which_user_and_app_are_connected(client, emulator, user_credentials):
    connected(client, user_credentials)

    html = client.get(KEYS_URL).content.decode()

    header = html[html.index("<header") : html.index("</header>")]
    assert user_credentials[0] in header
    assert emulator.app_id in header


def test_it_says_when_there_are_no_keys_yet(client, emulator, user_credentials):
    connected(client, user_credentials)

    html = client.get(KEYS_URL).content.decode()

    assert not hidden(html, "keys-empty")
    assert hidden(html, "keys-wrap")
    assert hidden(html, "keys-nomatch")
    assert '<span id="key-count">0</span>' in html


def test_it_filters_by_name_and_status_without_javascript(client, emulator, user_credentials):
    connected(client, user_credentials)
    ci = create_key(client, "ci-runner")
    backup = create_key(client, "backup")

    by_name = client.get(KEYS_URL, {"q": "CI"}).content.decode()
    by_status = client.get(KEYS_URL, {"status": "disabled"}).content.decode()

    assert not hidden(by_name, f"key-{ci}")
    assert hidden(by_name, f"key-{backup}")
    assert hidden(by_status, f"key-{ci}") and hidden(by_status, f"key-{backup}")
    assert not hidden(by_status, "keys-nomatch")


def test_it_answers_htmx_with_the_table_only(client, emulator, user_credentials):
    connected(client, user_credentials)
    create_key(client, "ci-runner")

    response = client.get(KEYS_URL, headers=HTMX)

    html = response.content.decode()
    assert response.status_code == 200
    assert html.lstrip().startswith('<section id="key-table"')
    assert "<html" not in html
    assert "HX-Request" in response["Vary"]


@pytest.mark.parametrize(
    ("fault", "says"),
    [
        ({"action": "status", "status": 503}, "internal error (HTTP 503)"),
        ({"action": "html"}, "error page"),
        ({"action": "malformed"}, "cannot read"),
        ({"action": "redirect", "location": "http://127.0.0.1:9/"}, "redirect"),
    ],
)
def test_it_shows_upstream_failures_in_the_table_area(
    client, emulator, user_credentials, fault, says
):
    connected(client, user_credentials)
    emulator.add_fault(route="keys_list", **fault)

    page = client.get(KEYS_URL)
    fragment = client.get(KEYS_URL, headers=HTMX)

    # The page asked for, with the problem in place: 200 (htmx 2 swaps only 2xx answers).
    assert page.status_code == fragment.status_code == 200
    for html in (page.content.decode(), fragment.content.decode()):
        assert "The keys could not be loaded." in html
        assert says in html
        assert 'hx-get="/keys/" hx-target="#key-table"' in html  # retry
    assert 'id="create-form"' in page.content.decode()  # the rest of the page still works


def test_it_reports_a_timeout_with_retry(client, emulator, user_credentials, settings):
    connected(client, user_credentials)
    settings.APPSERVICES_TIMEOUT = (1, 0.5)
    emulator.add_fault(route="keys_list", action="delay", delay_ms=1500, times=1)
    emulator.reset_stats()

    response = client.get(KEYS_URL, headers=HTMX)

    assert response.status_code == 200
    assert "did not answer in time" in response.content.decode()
    assert emulator.request_count("keys_list") == 1


def test_it_sends_an_ended_session_back_to_sign_in(client, emulator, user_credentials):
    connected(client, user_credentials)
    emulator.add_fault(route="keys_list", action="status", status=401)

    htmx = client.get(KEYS_URL, headers=HTMX)
    emulator.clear_faults()
    page = client.get(KEYS_URL)

    assert htmx.status_code == 200
    assert htmx["HX-Redirect"] == SIGNIN_URL
    assert page["Location"] == SIGNIN_URL  # the connection was forgotten
    signin = client.get(SIGNIN_URL).content.decode()
    assert "session has ended" in signin


def test_it_explains_sessions_that_cannot_have_keys(client, emulator):
    connected_anonymously(client, emulator)

    response = client.get(KEYS_URL)

    assert response.status_code == 200
    assert "This session cannot manage API keys" in response.content.decode()
    assert emulator.request_count() == 0


def test_it_needs_an_app_services_connection(client, emulator):
    sign_in_staff(client)

    assert client.get(KEYS_URL)["Location"] == SIGNIN_URL
    assert client.get(KEYS_URL, headers=HTMX)["HX-Redirect"] == SIGNIN_URL


def test_it_redirects_the_root_to_the_keys(client):
    assert client.get("/")["Location"] == KEYS_URL


def test_it_rejects_post(client, emulator, user_credentials):
    connected(client, user_credentials)

    assert client.post(KEYS_URL).status_code == 405


def test_it_compresses_the_keys_page_but_never_a_secret(client, emulator, user_credentials):
    connected(client, user_credentials)
    gzip = {"Accept-Encoding": "gzip"}

    page = client.get(KEYS_URL, headers=gzip)
    created = client.post(CREATE_URL, {"name": "never-compressed"}, headers={**HTMX, **gzip})

    assert page["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in page["Vary"]
    # A compressed answer that also reflects input could leak the secret by its length (BREACH).
    assert not created.has_header("Content-Encoding")
