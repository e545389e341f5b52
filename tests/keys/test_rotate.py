"""Rotate: the successor made with one App Services request, its secret shown once, the old key
kept enabled and marked superseded, both linked in their notes and in one audit row."""

from __future__ import annotations

import logging
import re

import pytest
from django.contrib.sessions.models import Session

from keyadmin.keys.notes import successor_suggestion
from keyadmin.models import AuditEvent, KeyNote
from tests.keys.test_create import secret_in
from tests.keys.test_notes import visible
from tests.support import (
    HTMX,
    KEYS_URL,
    connect,
    connected_with_key,
    key_url,
    opened_form,
    row_post,
    sign_in_staff,
)


@pytest.fixture
def old_id(client, emulator, user_credentials) -> str:
    key_id = connected_with_key(client, emulator, user_credentials)
    data = row_post(key_id, "ci-runner", purpose="Nightly CI", ticket="SUP-5", owner="team-ci")
    client.post(key_url(key_id, "note"), {**data, "review_by": "2031-01-31"}, headers=HTMX)
    emulator.reset_stats()
    return key_id


def rotate(client, key_id: str, new_name: str = "ci-runner-2", headers=HTMX):
    data = row_post(key_id, "ci-runner", new_name=new_name)
    return client.post(key_url(key_id, "rotate"), data, headers=headers)


def test_the_list_suggests_a_free_successor_name(client, emulator, user_credentials):
    key_id = connected_with_key(client, emulator, user_credentials)
    client.post("/keys/new/", {"name": "ci-runner-2"}, headers=HTMX)

    page = client.get(KEYS_URL).content.decode()

    assert 'name="new_name"' not in page  # a Rotate button per row, not a form
    for headers in (HTMX, {}):
        row = opened_form(client, page, key_id, "rotate", headers=headers)
        assert 'name="new_name"' in row and 'value="ci-runner-3"' in row
    assert emulator.request_count("keys_list") == 1  # opening the form asks nothing upstream


def test_each_opened_rotate_form_carries_its_own_nonce(client, emulator, old_id):
    page = client.get(KEYS_URL).content.decode()
    nonce = re.compile(r'name="form_nonce" value="([^"]+)"')

    first = nonce.findall(opened_form(client, page, old_id, "rotate", headers=HTMX))
    second = nonce.findall(opened_form(client, page, old_id, "rotate", headers=HTMX))

    assert len(first) == len(second) == 1 and first != second


def test_successor_names():
    assert successor_suggestion("ci", set()) == "ci-2"
    assert successor_suggestion("ci-2", {"ci-3"}) == "ci-4"
    assert successor_suggestion("ci-2024", set()) == "ci-2025"
    assert successor_suggestion("2024-10", set()) == "2024-10-2"
    assert successor_suggestion("x" * 64, set()) == "x" * 62 + "-2"


def test_rotate_makes_the_successor_with_one_request_and_links_the_keys(
    client, emulator, user_credentials, old_id, caplog
):
    caplog.set_level(logging.DEBUG)

    response = rotate(client, old_id)

    assert response.status_code == 200
    assert emulator.request_count() == 1
    assert emulator.request_count("keys_create") == 1
    assert "no-store" in response["Cache-Control"]
    html = response.content.decode()
    keys = {key["name"]: key for key in emulator.keys_of(user_credentials[0])}
    new_id = keys["ci-runner-2"]["_id"]
    assert keys["ci-runner"]["disabled"] is False  # the old key keeps working
    # main swap: the old row, superseded, its Disable now "Disable old key"
    assert html.lstrip().startswith(f'<tr id="key-{old_id}"')
    old_html = html.split(f'<tr id="key-{old_id}"')[1].split("</tr>")[0]
    assert 'Superseded by “<span translate="no">ci-runner-2</span>”' in old_html
    old_row = visible(old_html)
    assert "Disable old key ci-runner" in old_row
    assert "Rotate" not in old_row
    # out of band: the secret panel (naming user and app, with Disable old key) and the new row
    assert '<template><div hx-swap-oob="afterbegin:#new-secrets">' in html  # may follow a <tr>
    panel = html.split('class="secret-panel"')[1].split("</section>")[0]
    assert user_credentials[0] in panel
    assert "It replaces “ ci-runner ”, which stays enabled" in visible(panel)
    assert f'hx-post="/keys/{old_id}/disable/"' in panel
    assert f'hx-target="#key-{old_id}"' in panel
    assert f'<tr id="key-{new_id}"' in html
    new_row = visible(html.split(f'<tr id="key-{new_id}"')[1].split("</tr>")[0])
    assert "Nightly CI" in new_row and "Replaces key" in new_row
    assert "Created by Sam Support" in new_row
    # the secret: once in this answer, nowhere else
    secret = secret_in(html)
    assert html.count(secret) == 1
    assert secret not in caplog.text
    assert all(secret not in str(s.get_decoded()) for s in Session.objects.all())
    assert not any(secret in str(vars(n)) for n in KeyNote.objects.all())
    assert not any(secret in str(vars(e)) for e in AuditEvent.objects.all())
    # the notes and the trail link both ways
    old, new = KeyNote.objects.get(key_id=old_id), KeyNote.objects.get(key_id=new_id)
    assert old.superseded_by == new_id and new.supersedes == old_id
    assert (new.purpose, new.ticket, new.owner, str(new.review_by)) == (
        "Nightly CI",
        "SUP-5",
        "team-ci",
        "2031-01-31",
    )
    event = AuditEvent.objects.get(action="rotate")
    assert (event.outcome, event.key_id, event.key_name) == ("ok", new_id, "ci-runner-2")
    assert event.changes == {"key": [old_id, new_id]}
    assert old_id in event.detail


def test_disable_old_key_is_the_row_s_own_disable_with_one_request(
    client, emulator, user_credentials, old_id
):
    rotate(client, old_id)
    new_id = KeyNote.objects.get(key_id=old_id).superseded_by
    emulator.reset_stats()

    response = client.post(key_url(old_id, "disable"), row_post(old_id, "ci-runner"), headers=HTMX)

    assert emulator.request_count() == 1
    html = response.content.decode()
    assert '<span class="badge badge-off">Disabled</span>' in html
    assert f"Superseded by key {new_id}" in visible(html)  # the note stays on the row
    old = next(k for k in emulator.keys_of(user_credentials[0]) if k["_id"] == old_id)
    assert old["disabled"] is True


def test_without_javascript_rotate_answers_with_the_secret_page(
    client, emulator, user_credentials, old_id
):
    response = rotate(client, old_id, headers={})

    assert response.status_code == 200
    assert emulator.request_count() == 1
    html = response.content.decode()
    assert "<title>Key created · keyadmin</title>" in html
    secret = secret_in(html)
    assert html.count(secret) == 1
    assert f'action="/keys/{old_id}/disable/"' in html


def test_a_taken_name_is_said_in_the_row_with_the_name_kept(
    client, emulator, user_credentials, old_id
):
    response = rotate(client, old_id, new_name="ci-runner")

    assert emulator.request_count() == 1
    html = response.content.decode()
    assert html.lstrip().startswith(f'<tr id="key-{old_id}"')
    assert "already has a key with that name" in visible(html)
    assert 'value="ci-runner"' in html and 'class="rotate-form"' in html
    assert not KeyNote.objects.get(key_id=old_id).superseded_by
    assert AuditEvent.objects.filter(action="rotate", outcome="failed").exists()


def test_a_bad_name_is_refused_before_any_request(client, emulator, old_id):
    response = rotate(client, old_id, new_name="has space")

    assert emulator.request_count() == 0
    assert 'aria-invalid="true"' in response.content.decode()


def test_a_lost_answer_is_looked_for_once_never_retried(client, emulator, user_credentials, old_id):
    emulator.add_fault(route="keys_create", action="status", status=500, when="after", times=1)

    response = rotate(client, old_id)

    assert emulator.request_count("keys_create") == 1
    assert emulator.request_count("keys_list") == 1
    assert emulator.request_count() == 2
    html = response.content.decode()
    lost = next(k for k in emulator.keys_of(user_credentials[0]) if k["name"] == "ci-runner-2")
    assert "was created but its secret was lost in transit" in visible(html)
    assert f'<tr id="key-{lost["_id"]}"' in html  # its row, to delete it
    assert "secret-panel" not in html
    assert not KeyNote.objects.get(key_id=old_id).superseded_by
    event = AuditEvent.objects.filter(action="rotate").latest("id")
    assert (event.outcome, event.key_id) == ("failed", lost["_id"])


def test_a_failed_create_leaves_the_old_key_alone(client, emulator, user_credentials, old_id):
    emulator.add_fault(route="keys_create", action="status", status=503, times=1)

    response = rotate(client, old_id)

    assert emulator.request_count("keys_create") == 1  # never retried; one list to be sure
    assert emulator.request_count() == 2
    text = visible(response.content.decode())
    assert "App Services has no key named “ci-runner-2”: the key was not created" in text
    assert [k["name"] for k in emulator.keys_of(user_credentials[0])] == ["ci-runner"]
    assert not KeyNote.objects.get(key_id=old_id).superseded_by


def test_a_viewer_cannot_rotate(client, emulator, user_credentials):
    key_id = connected_with_key(client, emulator, user_credentials)
    client.logout()
    sign_in_staff(client, "viewer", name="Val Viewer")
    connect(client, user_credentials)
    emulator.reset_stats()

    response = rotate(client, key_id)

    assert response.status_code == 403
    assert emulator.request_count() == 0
    assert f"/keys/{key_id}/rotate/" not in client.get(KEYS_URL).content.decode()
    assert client.get(key_url(key_id, "rotate")).status_code == 403


def test_a_rotate_sent_twice_without_javascript_offers_to_delete_its_own_successor(
    client, emulator, user_credentials, old_id
):
    page = opened_form(client, client.get(KEYS_URL).content.decode(), old_id, "rotate")
    form = page.split(f'action="/keys/{old_id}/rotate/"')[1].split("</form>")[0]
    nonce = re.search(r'name="form_nonce" value="([^"]+)"', form).group(1)
    data = row_post(old_id, "ci-runner", new_name="ci-runner-2", form_nonce=nonce)
    client.post(key_url(old_id, "rotate"), data)  # the answer with the secret, dropped
    emulator.reset_stats()

    again = client.post(key_url(old_id, "rotate"), data)

    assert emulator.request_count("keys_create") == 1  # refused: name taken; never a third
    html = again.content.decode()
    twin = next(k for k in emulator.keys_of(user_credentials[0]) if k["name"] == "ci-runner-2")
    assert "was created moments ago" in visible(html)
    assert f'action="/keys/{twin["_id"]}/delete/"' in html

    client.post(key_url(twin["_id"], "delete"), row_post(twin["_id"], "ci-runner-2", confirm="1"))

    assert not KeyNote.objects.filter(key_id=twin["_id"]).exists()
    assert KeyNote.objects.get(key_id=old_id).superseded_by == ""  # no longer superseded


def test_a_taken_name_from_another_form_gets_no_offer(client, emulator, old_id):
    client.post("/keys/new/", {"name": "ci-runner-2"}, headers=HTMX)
    emulator.reset_stats()

    response = rotate(client, old_id)

    assert "moments ago" not in visible(response.content.decode())
    assert emulator.request_count() == 1  # no list to look for a twin without a claim


def test_an_ended_session_sends_htmx_back_to_sign_in(client, emulator, old_id):
    emulator.add_fault(route="keys_create", action="status", status=401)

    response = rotate(client, old_id)

    assert response.status_code == 200
    assert response["HX-Redirect"] == "/appservices/sign-in/"
    assert emulator.request_count("keys_create") == 1
    assert not KeyNote.objects.get(key_id=old_id).superseded_by
