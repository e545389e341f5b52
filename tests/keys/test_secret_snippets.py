"""The secret panel's ready-to-paste snippets: rendered around an empty slot, never with the secret.

The browser fills them from the panel's one copy of the secret (tests/browser/test_snippets.py);
here: the server's answer still holds the secret exactly once, and the snippets hold what is not
secret (the app id and base URL) and nothing else.
"""

from __future__ import annotations

import dataclasses
import html as html_lib
import re

import pytest

from tests.keys.test_create import secret_in
from tests.support import CREATE_URL, HTMX, connected

SLOT = re.compile(r'<span data-secret-slot="([\w-]+)">([^<]*)</span>')
ATTRIBUTE_VALUES = re.compile(r'\s[\w:-]+="([^"]*)"')


def snippet(page: str, name: str) -> str:
    """The text of one snippet's <code> as the page renders it, tags and all."""
    found = re.search(
        rf'<code id="snippet-{name}-[0-9a-f]{{24}}" data-snippet[^>]*>(.*?)</code>', page, re.S
    )
    assert found, page[:3000]
    return found.group(1)


def unmasked(code: str) -> str:
    """A snippet's text with the placeholder taken out, as keyadmin.js builds it before filling."""
    code = re.sub(r'<span class="snippet-mask">.*?</span></span>', "", code)
    return html_lib.unescape(re.sub(r"<[^>]+>", "", code))


@pytest.mark.parametrize("headers", [HTMX, {}], ids=["htmx", "no-js page"])
def test_the_create_answer_holds_the_secret_once_and_the_snippets_only_empty_slots(
    client, emulator, user_credentials, settings, headers
):
    connected(client, user_credentials)
    emulator.reset_stats()

    response = client.post(CREATE_URL, {"name": "ci-runner"}, headers=headers)

    assert response.status_code == 200
    assert emulator.request_count() == 1  # the snippets cost no request
    page = response.content.decode()
    secret = secret_in(page)
    assert page.count(secret) == 1
    assert "data-secret-snippets" in page and "Ready to paste:" in page
    assert 'class="secret-snippets js-only"' in page  # hidden without JavaScript
    # three slots, all empty: the browser fills them, the server never does
    assert SLOT.findall(page) == [("raw", ""), ("js", ""), ("shell-json", "")]
    assert not any(secret in value for value in ATTRIBUTE_VALUES.findall(page))

    app = settings.KEYADMIN_APPS[0]
    assert unmasked(snippet(page, "env")) == "APP_SERVICES_API_KEY="
    assert unmasked(snippet(page, "realm")) == (
        f'const app = new Realm.App({{ id: "{app.app_id}", baseUrl: "{app.base_url}" }});\n'
        'const user = await app.logIn(Realm.Credentials.apiKey(""));'
    )
    assert unmasked(snippet(page, "curl")) == (
        f"curl -X POST '{app.base_url}/api/client/v2.0/app/{app.app_id}"
        "/auth/providers/api-key/login' \\\n"
        "  -H 'Content-Type: application/json' \\\n"
        """  -d '{"key": ""}'"""
    )
    assert f'data-filename="{app.app_id}.env"' in page  # the single app is named by its id
    for name in ("the environment variable", "the realm-web code", "the curl command"):
        assert f'Copy<span class="vh"> {name}</span>' in page


def test_the_env_file_is_named_after_the_app(client, emulator, user_credentials, settings):
    settings.KEYADMIN_APPS = (
        dataclasses.replace(settings.KEYADMIN_APPS[0], name="Shop Staging (EU)"),
    )
    connected(client, user_credentials)

    page = client.post(CREATE_URL, {"name": "ci-runner"}, headers=HTMX).content.decode()

    assert 'data-filename="shop-staging-eu.env"' in page
