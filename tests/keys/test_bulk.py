"""Bulk actions: the selected keys enabled, disabled or deleted after a confirmation."""

from __future__ import annotations

import re

import pytest

from keyadmin.models import AuditEvent, KeyNote
from tests.support import (
    HTMX,
    KEYS_URL,
    connect,
    connected,
    create_key,
    key_url,
    row_post,
    sign_in_staff,
)

BULK_URL = "/keys/bulk/"


@pytest.fixture
def keys(client, emulator, user_credentials) -> dict[str, str]:
    """A connected operator whose user has keys a, b, c (enabled); counts at 0."""
    connected(client, user_credentials)
    ids = {name: create_key(client, name) for name in ("key-a", "key-b", "key-c")}
    emulator.reset_stats()
    return ids


def states(emulator, user_credentials) -> dict[str, bool]:
    return {key["name"]: key["disabled"] for key in emulator.keys_of(user_credentials[0])}


def text(response) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", response.content.decode()).split())


def result_of(html: str, key_id: str) -> str:
    found = re.search(rf'data-result="([a-z-]+)" data-key-id="{key_id}"', html)
    assert found, html[:3000]
    return found.group(1)


def batch_of(html: str) -> str:
    return re.search(r'Batch id <code translate="no">([0-9a-f-]{36})</code>', html).group(1)


def test_the_keys_page_has_a_labelled_checkbox_per_row_and_the_toolbar(client, keys):
    html = client.get(KEYS_URL).content.decode()

    for name, key_id in keys.items():
        assert (
            f'<input type="checkbox" id="select-{key_id}" name="key" value="{key_id}" '
            f'form="bulk-form" data-select-key><label for="select-{key_id}" class="vh">'
            f"Select {name}</label>"
        ) in html
    assert '<form id="bulk-form"' in html
    assert 'data-select-all><label for="select-all" class="vh">Select all shown keys' in html
    assert 'href="/keys/lock-down/"' in html
    # the checkbox comes first in its row
    row = html.split(f'id="key-{keys["key-a"]}"', 1)[1]
    assert row.index('class="cell-select"') < row.index('class="cell-name"')


def test_a_viewer_has_no_checkboxes_and_cannot_post(client, emulator, user_credentials, keys):
    client.logout()
    sign_in_staff(client, "viewer", name="Val Viewer")
    connect(client, user_credentials)
    emulator.reset_stats()

    html = client.get(KEYS_URL).content.decode()
    response = client.post(BULK_URL, {"action": "delete", "key": list(keys.values())})

    assert "data-select-key" not in html and 'id="bulk-form"' not in html
    assert response.status_code == 403
    assert emulator.request_count("keys_delete") == 0


def test_the_confirmation_counts_the_selection_and_names_the_user(
    client, emulator, user_credentials, keys
):
    selected = [keys["key-a"], keys["key-b"], "f" * 24]

    response = client.post(BULK_URL, {"action": "delete", "key": selected}, headers=HTMX)

    assert response.status_code == 200
    assert emulator.request_count() == 1
    assert emulator.request_count("keys_list") == 1
    html = response.content.decode()
    assert html.lstrip().startswith('<section id="bulk-panel"')
    assert f"Delete 2 keys of {user_credentials[0]} on " in text(response)
    assert "1 selected key is no longer in this user's list and is left out." in text(response)
    form = html.split('name="confirm" value="1"', 1)[1].split("</form>", 1)[0]
    assert re.findall(r'name="key" value="([0-9a-f]{24})"', form) == selected[:2]
    assert AuditEvent.objects.filter(action="bulk").count() == 0  # nothing done yet


def test_bulk_delete_deletes_each_key_and_its_note_with_one_request_each(
    client, emulator, user_credentials, keys
):
    connection = client.session["appservices"]
    for key_id in keys.values():
        KeyNote.objects.create(
            app_id=connection["app_id"],
            appservices_user_id=connection["user_id"],
            key_id=key_id,
            purpose="ci",
        )
    selected = [keys["key-a"], keys["key-b"]]

    response = client.post(
        BULK_URL, {"action": "delete", "confirm": "1", "key": selected}, headers=HTMX
    )

    assert emulator.request_count("keys_list") == 1
    assert emulator.request_count("keys_delete") == 2
    assert emulator.request_count() == 3
    assert sorted(states(emulator, user_credentials)) == ["key-c"]
    assert list(KeyNote.objects.values_list("key_id", flat=True)) == [keys["key-c"]]
    html = response.content.decode()
    assert f"2 of 2 keys of {user_credentials[0]} on " in text(response)
    assert f'data-gone-ids="{keys["key-a"]} {keys["key-b"]}"' in html
    batch_id = batch_of(html)
    rows = AuditEvent.objects.filter(batch_id=batch_id).order_by("id")
    assert [(r.action, r.outcome, r.key_id, r.key_name) for r in rows] == [
        ("delete", "ok", keys["key-a"], "key-a"),
        ("delete", "ok", keys["key-b"], "key-b"),
        ("bulk", "ok", "", ""),
    ]
    assert rows[2].detail == "delete 2 keys: 2 done"


def test_bulk_disable_reports_keys_already_disabled_and_sends_the_changed_rows(
    client, emulator, user_credentials, keys
):
    a, b = keys["key-a"], keys["key-b"]
    client.post(key_url(a, "disable"), row_post(a, "key-a"), headers=HTMX)
    emulator.reset_stats()

    response = client.post(
        BULK_URL, {"action": "disable", "confirm": "1", "key": [a, b]}, headers=HTMX
    )

    assert emulator.request_count("keys_disable") == 1
    assert emulator.request_count() == 2
    html = response.content.decode()
    assert result_of(html, a) == "already"
    assert result_of(html, b) == "done"
    rows = html.split("<template data-batch-rows>", 1)[1]
    assert f'<tr id="key-{a}"' in rows and f'<tr id="key-{b}"' in rows
    assert rows.count('data-status="disabled"') == 2
    assert states(emulator, user_credentials) == {"key-a": True, "key-b": True, "key-c": False}


def test_bulk_enable_under_a_fault_midway_gives_an_exact_result_and_trail(
    client, emulator, user_credentials, keys
):
    ids = list(keys.values())
    for key_id in ids:
        client.post(key_url(key_id, "disable"), row_post(key_id, "k"), headers=HTMX)
    emulator.reset_stats()
    emulator.add_fault(route="keys_enable", path=ids[1], action="html", status=502)

    response = client.post(BULK_URL, {"action": "enable", "confirm": "1", "key": ids}, headers=HTMX)

    html = response.content.decode()
    assert [result_of(html, key_id) for key_id in ids] == ["done", "failed", "done"]
    assert "App Services answered with an error page (HTTP 502)" in html
    assert emulator.request_count("keys_enable") == 3
    assert states(emulator, user_credentials) == {"key-a": False, "key-b": True, "key-c": False}
    batch_id = batch_of(html)
    rows = AuditEvent.objects.filter(batch_id=batch_id).order_by("id")
    assert [(r.action, r.outcome, r.key_id, r.status) for r in rows] == [
        ("enable", "ok", ids[0], None),
        ("enable", "failed", ids[1], 502),
        ("enable", "ok", ids[2], None),
        ("bulk", "failed", "", None),
    ]
    assert "Retry the failed one" in html
    emulator.clear_faults()
    emulator.reset_stats()
    token = re.search(r'name="batch" value="([^"]+)"', html).group(1)

    retried = client.post(
        BULK_URL,
        {"action": "enable", "confirm": "1", "key": [ids[1]], "batch": token},
        headers=HTMX,
    )

    assert emulator.request_count("keys_enable") == 1
    assert batch_of(retried.content.decode()) == batch_id
    assert result_of(retried.content.decode(), ids[1]) == "done"


def test_a_deleted_key_is_gone_and_a_forged_batch_token_is_not_used(
    client, emulator, user_credentials, keys
):
    a = keys["key-a"]
    # Deleted elsewhere between the list and the delete: App Services' own answer.
    body = {"error": "API key not found", "error_code": "APIKeyNotFound"}
    emulator.add_fault(route="keys_delete", action="status", status=404, body=body, times=1)

    response = client.post(
        BULK_URL,
        {"action": "delete", "confirm": "1", "key": [a], "batch": "0" * 36},
        headers=HTMX,
    )

    html = response.content.decode()
    assert result_of(html, a) == "gone"
    assert batch_of(html) != "0" * 36
    assert AuditEvent.objects.get(action="delete", key_id=a).status == 404


def test_without_javascript_it_is_a_confirmation_page_then_a_results_page(
    client, emulator, user_credentials, keys
):
    selected = {"action": "disable", "key": [keys["key-a"]]}

    confirmation = client.post(BULK_URL, selected)
    done = client.post(BULK_URL, {**selected, "confirm": "1"})

    assert confirmation.status_code == 200 and "<html" in confirmation.content.decode()
    assert f"Disable 1 key of {user_credentials[0]} on " in text(confirmation)
    assert done.status_code == 200 and "<html" in done.content.decode()
    assert f"1 of 1 key of {user_credentials[0]} on " in text(done)
    assert "data-batch-rows" not in done.content.decode()
    assert states(emulator, user_credentials)["key-a"] is True


def test_nothing_selected_or_a_bad_action_asks_for_a_selection(client, emulator, keys):
    for data in ({"action": "delete"}, {"action": "rename", "key": [keys["key-a"]]}):
        response = client.post(BULK_URL, data, headers=HTMX)
        assert "No key selected" in response.content.decode()
    assert emulator.request_count() == 0


def test_a_stale_page_is_refused_without_a_request(client, emulator, keys):
    response = client.post(
        BULK_URL,
        {"action": "delete", "confirm": "1", "key": [keys["key-a"]], "bound_to": "x"},
        headers=HTMX,
    )

    assert emulator.request_count() == 0
    assert "does not say which App Services user it was for" in response.content.decode()
    assert AuditEvent.objects.get(action="bulk").outcome == "denied"
