from __future__ import annotations

from tests.support import (
    connected,
    connected_anonymously,
    create_key,
    key_url,
)


def test_it_shows_one_key_fetched_by_id(client, emulator, user_credentials):
    connected(client, user_credentials)
    key_id = create_key(client, "ci-runner")
    emulator.reset_stats()

    response = client.get(key_url(key_id))

    assert response.status_code == 200
    assert emulator.request_count() == 1
    assert emulator.request_count("keys_get") == 1
    html = response.content.decode()
    assert f'<code id="key-id" translate="no">{key_id}</code>' in html
    assert "ci-runner" in html
    assert '<span class="badge badge-on">Enabled</span>' in html
    assert '<time datetime="' in html and " UTC</time>" in html
    assert 'href="/keys/"' in html


def test_it_says_when_the_key_does_not_exist(client, emulator, user_credentials):
    connected(client, user_credentials)

    response = client.get(key_url("0" * 24))

    assert response.status_code == 404
    html = response.content.decode()
    assert "no longer exists" in html
    assert ">Retry<" not in html


def test_it_reports_app_services_down_with_retry(client, emulator, user_credentials):
    connected(client, user_credentials)
    key_id = create_key(client, "ci-runner")
    emulator.add_fault(route="keys_get", action="html")

    response = client.get(key_url(key_id))

    assert response.status_code == 200
    assert f'href="/keys/{key_id}/">Retry<' in response.content.decode()


def test_it_404s_malformed_ids_before_any_request(client, emulator, user_credentials):
    connected(client, user_credentials)
    emulator.reset_stats()

    assert client.get("/keys/not-an-id/").status_code == 404
    assert client.get("/keys/" + "A" * 24 + "/").status_code == 404
    assert emulator.request_count() == 0


def test_it_refuses_sessions_that_cannot_have_keys(client, emulator):
    connected_anonymously(client, emulator)

    response = client.get(key_url("0" * 24))

    assert response.status_code == 403
    assert emulator.request_count() == 0
