"""Every answer says where its time went (Server-Timing), and says nothing else."""

from __future__ import annotations

import re

import pytest

from keyadmin.keys import views
from tests.support import (
    CREATE_URL,
    HTMX,
    KEYS_URL,
    FormClient,
    connected,
    connected_with_key,
    key_url,
    row_post,
)

# name;dur=<ms>[;desc="<count> <word>"], nothing else.
_METRIC = re.compile(r'([a-z]+);dur=(\d+\.\d+)(?:;desc="(\d+) (query|queries|request|requests)")?')
NAMES = ["app", "db", "upstream", "render"]


def timings(response) -> dict[str, tuple[float, int | None]]:
    header = response["Server-Timing"]
    parts = [part.strip() for part in header.split(",")]
    found = {}
    for part in parts:
        matched = _METRIC.fullmatch(part)
        assert matched, f"not a name with a number: {part!r}"
        name, ms, count, _word = matched.groups()
        found[name] = (float(ms), int(count) if count else None)
    assert list(found) == NAMES
    return found


def test_a_full_page_says_its_queries_its_upstream_request_and_its_render(
    client, emulator, user_credentials
):
    connected(client, user_credentials)

    response = client.get(KEYS_URL)

    found = timings(response)
    assert found["upstream"][1] == 1  # the list
    assert found["db"][1] >= 1  # the session at least
    assert found["render"][0] > 0
    assert found["app"][0] >= found["upstream"][0]
    assert found["app"][0] >= found["render"][0]


def test_a_partial_carries_it_too(client, emulator, user_credentials):
    key_id = connected_with_key(client, emulator, user_credentials)

    response = client.post(key_url(key_id, "disable"), row_post(key_id, "ci-runner"), headers=HTMX)

    assert response.content.decode().lstrip().startswith(f'<tr id="key-{key_id}"')
    found = timings(response)
    assert found["upstream"][1] == emulator.request_count() == 1
    assert found["render"][0] > 0


def test_a_redirect_and_an_error_page_carry_it(client, emulator, user_credentials):
    key_id = connected_with_key(client, emulator, user_credentials)

    redirect = client.post(key_url(key_id, "disable"), row_post(key_id, "ci-runner"))
    missing = client.get("/no/such/page/")

    assert redirect.status_code == 302
    assert timings(redirect)["upstream"][1] == 1
    assert missing.status_code == 404
    assert timings(missing)["upstream"][1] == 0
    assert timings(missing)["render"][0] > 0


def test_a_server_error_page_carries_it(emulator, user_credentials, monkeypatch):
    client = FormClient(raise_request_exception=False)
    connected(client, user_credentials)

    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(views, "_render_keys", broken)
    response = client.get(KEYS_URL, headers=HTMX)

    assert response.status_code == 500
    assert timings(response)["upstream"][1] == 1


def test_a_signed_out_answer_counts_no_upstream_request(client):
    response = client.get(KEYS_URL)

    assert response.status_code in (302, 401, 403)
    assert timings(response)["upstream"] == (pytest.approx(0.0), 0)


def test_it_never_names_the_key_the_user_or_the_secret(client, emulator, user_credentials):
    connected(client, user_credentials)
    email = user_credentials[0]

    created = client.post(CREATE_URL, {"name": "deploy-bot"}, headers=HTMX)
    html = created.content.decode()
    key_id = re.search(r'id="key-([0-9a-f]{24})"', html).group(1)
    secret = re.search(r'class="secret-value"[^>]*>([^<]+)<', html).group(1)
    header = created["Server-Timing"]

    timings(created)
    session_key = client.session.session_key
    for told in (key_id, secret, "deploy-bot", email, email.split("@")[0], session_key):
        assert told not in header
