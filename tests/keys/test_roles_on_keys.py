"""Roles on the key views: what each role may do, on the server and in the page, and the audit
trail of a whole session."""

from __future__ import annotations

import pytest

from keyadmin.models import AuditEvent
from tests.support import (
    CREATE_URL,
    HTMX,
    KEYS_URL,
    connect,
    create_key,
    holds_jwt,
    key_url,
    row_post,
    sign_in_staff,
)


def test_a_viewer_sees_keys_but_no_actions(client, emulator, user_credentials):
    sign_in_staff(client)
    connect(client, user_credentials)
    create_key(client, "seen-by-viewer")
    client.logout()
    sign_in_staff(client, "viewer", name="Val Viewer")
    connect(client, user_credentials)

    page = client.get(KEYS_URL).content.decode()

    assert "seen-by-viewer" in page
    assert 'id="create-form"' not in page
    assert 'id="toggle-' not in page
    assert "/disable/" not in page and "/delete/" not in page
    assert "needs the operator role" in page


@pytest.mark.parametrize(
    ("action", "data"),
    [
        ("create", {"name": "not-allowed"}),
        ("disable", None),
        ("enable", None),
        ("delete", {"confirm": "1"}),
    ],
)
def test_the_server_refuses_a_viewer_every_change(client, emulator, user_credentials, action, data):
    sign_in_staff(client)
    connect(client, user_credentials)
    key_id = create_key(client, "target")
    client.logout()
    sign_in_staff(client, "viewer", name="Val Viewer")
    connect(client, user_credentials)
    emulator.reset_stats()

    url = CREATE_URL if action == "create" else key_url(key_id, action)
    payload = data if action == "create" else row_post(key_id, "target", **(data or {}))
    response = client.post(url, payload, headers=HTMX)

    assert response.status_code == 403
    assert emulator.request_count() == 0
    assert AuditEvent.objects.filter(action="denied", outcome="denied").exists()


def test_an_auditor_alone_cannot_see_keys(client, emulator, user_credentials):
    sign_in_staff(client, "auditor", name="Ada Auditor")

    assert client.get(KEYS_URL).status_code == 403
    assert client.get("/audit/").status_code == 200


def test_the_audit_trail_holds_a_whole_session_and_no_secret(client, emulator, user_credentials):
    sign_in_staff(client)
    connect(client, user_credentials)
    created = client.post(CREATE_URL, {"name": "audited"}, headers=HTMX).content.decode()
    secret = created.split('class="secret-value" translate="no">')[1].split("<")[0]
    key_id = create_key(client, "audited-2")
    client.post(key_url(key_id, "disable"), row_post(key_id, "audited-2"), headers=HTMX)
    client.post(key_url(key_id, "enable"), row_post(key_id, "audited-2", True), headers=HTMX)
    emulator.add_fault(route="keys_delete", action="status", status=503, times=1)
    client.post(key_url(key_id, "delete"), row_post(key_id, "audited-2", confirm="1"), headers=HTMX)
    client.post(key_url(key_id, "delete"), row_post(key_id, "audited-2", confirm="1"), headers=HTMX)
    client.post("/sign-out/")

    events = list(AuditEvent.objects.order_by("id"))
    trail = [(event.action, event.outcome) for event in events]
    assert trail == [
        ("appservices-signin", "ok"),
        ("create", "ok"),
        ("create", "ok"),
        ("disable", "ok"),
        ("enable", "ok"),
        ("delete", "failed"),
        ("delete", "ok"),
        ("appservices-signout", "ok"),
        ("signout", "ok"),
    ]
    failed = events[5]
    # The name a row form posts is the client's word: only the create answer's name is kept.
    assert failed.status == 503 and failed.key_id == key_id and failed.key_name == ""
    assert [event.key_name for event in events[1:5]] == ["audited", "audited-2", "", ""]
    assert all(event.staff_subject == "sub-sam-support" for event in events)
    assert all(event.request_id for event in events)
    assert events[1].appservices_user_id
    dump = "".join(str(vars(event)) for event in events)
    assert secret not in dump
    assert not holds_jwt(dump)
