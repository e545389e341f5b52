"""Key rows and empty form widgets are rendered once per worker and reused
(keyadmin/templatetags/keyrows.py, keyadmin/forms.py): every answer still carries its own CSRF
token and form binding, its language, fresh errors and what was typed."""

from __future__ import annotations

import re

from keyadmin.templatetags import keyrows
from tests.support import (
    HTMX,
    KEYS_URL,
    connected_with_key,
    current_binding,
    key_url,
    row_post,
)

_CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
_BINDING = re.compile(r'name="bound_to" value="([^"]+)"')


def without_tokens(html: str) -> str:
    """What is the same in every answer: no CSRF token, rotate-form nonce or binding (signed
    with a timestamp)."""
    html = re.sub(r'name="(form_nonce|bound_to)" value="[^"]*"', "", html)
    return _CSRF.sub("", re.sub(r'"X-Keyadmin-Bound-To": "[^"]*"', "", html))


def row_of(html: str, key_id: str) -> str:
    return re.search(rf'<tr id="key-{key_id}".*?</tr>', html, flags=re.DOTALL).group(0)


def test_a_reused_row_carries_this_answers_token_and_binding(client, emulator, user_credentials):
    key_id = connected_with_key(client, emulator, user_credentials)

    first = row_of(client.get(KEYS_URL, headers=HTMX).content.decode(), key_id)
    second = row_of(client.get(KEYS_URL, headers=HTMX).content.decode(), key_id)

    assert without_tokens(first) == without_tokens(second)
    assert _CSRF.findall(first) != _CSRF.findall(second)  # masked afresh for each answer
    # The binding's claims (before its timestamp and signature) are the current connection's.
    claims = {binding.split(":")[0] for binding in _BINDING.findall(second)}
    assert claims == {current_binding(client).split(":")[0]}
    # The token a reused row carries is one Django accepts: the toggle goes through.
    toggled = client.post(
        key_url(key_id, "disable"),
        {**row_post(key_id, "ci-runner"), "csrfmiddlewaretoken": _CSRF.findall(second)[0]},
        headers=HTMX,
    )
    assert 'data-status="disabled"' in toggled.content.decode()


def test_a_changed_note_is_shown_at_once(client, emulator, user_credentials):
    key_id = connected_with_key(client, emulator, user_credentials)
    client.get(KEYS_URL, headers=HTMX)

    client.post(
        key_url(key_id, "note"),
        row_post(key_id, "ci-runner", purpose="rotated monthly", ticket="", owner="", review_by=""),
        headers=HTMX,
    )

    assert "rotated monthly" in client.get(KEYS_URL, headers=HTMX).content.decode()


def test_a_reused_row_follows_the_language(client, emulator, user_credentials):
    key_id = connected_with_key(client, emulator, user_credentials)

    english = row_of(client.get(KEYS_URL, headers=HTMX).content.decode(), key_id)
    spanish = client.get(KEYS_URL, headers=HTMX, HTTP_ACCEPT_LANGUAGE="es").content.decode()

    assert ">Disable<" in english
    assert ">Deshabilitar<" in row_of(spanish, key_id)


def test_a_row_with_an_error_is_rendered_afresh(client, emulator, user_credentials):
    key_id = connected_with_key(client, emulator, user_credentials)
    client.get(KEYS_URL, headers=HTMX)
    emulator.add_fault(route="keys_disable", action="status", status=503)

    failed = client.post(key_url(key_id, "disable"), row_post(key_id, "ci-runner"), headers=HTMX)

    html = failed.content.decode()
    assert "has-error" in html
    assert 'class="row-error" role="alert"' in html


def test_an_empty_filter_is_reused_per_language_and_a_typed_one_is_not(
    client, emulator, user_credentials
):
    connected_with_key(client, emulator, user_credentials)

    english = client.get(KEYS_URL, headers=HTMX).content.decode()
    spanish = client.get(KEYS_URL, headers=HTMX, HTTP_ACCEPT_LANGUAGE="es").content.decode()
    typed = client.get(KEYS_URL + "?q=ci-run&status=enabled", headers=HTMX).content.decode()

    assert ">Any status</option>" in english
    assert ">Cualquier estado</option>" in spanish
    assert 'name="q" value="ci-run"' in typed
    assert '<option value="enabled" selected>' in typed
    assert 'value="ci-run"' not in client.get(KEYS_URL, headers=HTMX).content.decode()


def test_a_reused_row_is_the_row_rendered_afresh(client, emulator, user_credentials, monkeypatch):
    key_id = connected_with_key(client, emulator, user_credentials)
    client.post(key_url(key_id, "disable"), row_post(key_id, "ci-runner"), headers=HTMX)
    note = {"purpose": "deploys the shop", "ticket": "T-1", "owner": "", "review_by": ""}
    client.post(
        key_url(key_id, "note"), row_post(key_id, "ci-runner", disabled=True, **note), headers=HTMX
    )
    client.get(KEYS_URL, headers=HTMX)

    reused = client.get(KEYS_URL, headers=HTMX).content.decode()
    assert "deploys the shop" in reused
    monkeypatch.setattr(keyrows, "_plain", lambda value: False)
    fresh = client.get(KEYS_URL, headers=HTMX).content.decode()

    assert without_tokens(reused) == without_tokens(fresh)
