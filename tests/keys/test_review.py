"""Review-by dates: the app's review period at create, due and overdue badges, the filter, the
header count, "Reviewed", and the scheduled report of overdue keys."""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import replace
from datetime import timedelta

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.core.management import CommandError, call_command
from django.utils import timezone

from keyadmin.appsfile import load_apps
from keyadmin.keys.notes import REVIEW_DAYS_WITHOUT_PERIOD, review_state
from keyadmin.models import AuditEvent, KeyNote
from tests.keys.test_notes import visible
from tests.support import (
    CREATE_URL,
    HTMX,
    KEYS_URL,
    connected,
    connected_with_key,
    create_key,
    key_url,
    row_post,
)


def today():
    # Asked in each test, never at import: a run that crosses midnight must not compare days.
    return timezone.localdate()


@pytest.fixture
def review_period(settings):
    """The test app with a 90-day review period, as `review_days = 90` in the apps file says."""
    settings.KEYADMIN_APPS = (replace(settings.KEYADMIN_APPS[0], review_days=90),)
    return 90


def note(client, key_id: str, name: str, review_by) -> None:
    data = row_post(key_id, name, purpose="", ticket="", owner="", review_by=review_by.isoformat())
    assert client.post(key_url(key_id, "note"), data, headers=HTMX).status_code == 200


def row_of(html: str, key_id: str) -> str:
    return html.split(f'<tr id="key-{key_id}"')[1].split("</tr>")[0]


def test_the_create_form_proposes_the_app_s_review_date(
    client, emulator, user_credentials, review_period
):
    connected(client, user_credentials)

    page = client.get(KEYS_URL).content.decode()

    due = (today() + timedelta(days=90)).isoformat()
    assert re.search(rf'<input type="date" name="review_by" value="{due}"', page)
    assert 'name="purpose"' in page and 'name="ticket"' in page


def test_without_a_review_period_the_review_date_is_left_empty(client, emulator, user_credentials):
    connected(client, user_credentials)

    page = client.get(KEYS_URL).content.decode()

    assert re.search(r'<input type="date" name="review_by" id="id_review_by"(?! value)', page)


def test_a_key_created_with_a_note_has_it_at_once_and_audited(
    client, emulator, user_credentials, review_period
):
    connected(client, user_credentials)
    emulator.reset_stats()
    due = today() + timedelta(days=90)

    response = client.post(
        CREATE_URL,
        {"name": "billing", "purpose": "Billing export", "review_by": due.isoformat()},
        headers=HTMX,
    )

    assert emulator.request_count() == 1
    [key] = emulator.keys_of(user_credentials[0])
    row = visible(row_of(response.content.decode(), key["_id"]))
    assert "Billing export" in row and f"Review by {due:%Y-%m-%d}" in row
    assert "Created by Sam Support" in row
    stored = KeyNote.objects.get(key_id=key["_id"])
    assert (stored.purpose, stored.review_by) == ("Billing export", due)
    event = AuditEvent.objects.get(action="note", key_id=key["_id"])
    assert event.changes == {
        "purpose": ["", "Billing export"],
        "review_by": ["", due.isoformat()],
    }


def test_the_create_form_refuses_a_secret_in_its_note(client, emulator, user_credentials):
    connected(client, user_credentials)
    emulator.reset_stats()

    response = client.post(
        CREATE_URL, {"name": "billing", "purpose": "Z" * 12 + "0123456789abcdefABCDEF"}
    )

    assert emulator.request_count() == 0  # refused before anything goes upstream
    assert "Notes are not for secrets" in visible(response.content.decode())
    assert emulator.keys_of(user_credentials[0]) == []


def test_badges_header_count_and_the_server_filter(client, emulator, user_credentials):
    late = connected_with_key(client, emulator, user_credentials, "late")
    soon, later = create_key(client, "soon"), create_key(client, "later")
    note(client, late, "late", today() - timedelta(days=1))
    note(client, soon, "soon", today() + timedelta(days=3))
    note(client, later, "later", today() + timedelta(days=60))
    emulator.reset_stats()

    page = client.get(KEYS_URL).content.decode()

    assert emulator.request_count() == 1  # the list, nothing else
    assert "Review overdue" in visible(row_of(page, late))
    assert "Review due" in visible(row_of(page, soon))
    assert "Review" not in visible(row_of(page, later)).replace("Review by", "")
    assert 'data-review="overdue"' in row_of(page, late)
    header = visible(page.split('id="review-count"')[1].split("</p>")[0])
    assert "Review overdue: 1" in header and "Review due: 1" in header

    overdue = client.get(KEYS_URL, {"review": "overdue"}).content.decode()
    due = client.get(KEYS_URL, {"review": "due"}).content.decode()

    def hidden(html, key_id):
        return " hidden>" in row_of(html, key_id).split(">")[0] + ">"

    assert [hidden(overdue, k) for k in (late, soon, later)] == [False, True, True]
    assert [hidden(due, k) for k in (late, soon, later)] == [False, False, True]


def test_reviewed_moves_the_date_on_by_the_period_with_no_upstream_request(
    client, emulator, user_credentials, review_period
):
    key_id = connected_with_key(client, emulator, user_credentials)
    note(client, key_id, "ci-runner", today() - timedelta(days=5))
    emulator.reset_stats()

    response = client.post(key_url(key_id, "reviewed"), row_post(key_id, "ci-runner"), headers=HTMX)

    assert response.status_code == 200
    assert emulator.request_count() == 0
    html = response.content.decode()
    assert html.lstrip().startswith(f'<tr id="key-{key_id}"')
    after = today() + timedelta(days=90)
    assert KeyNote.objects.get(key_id=key_id).review_by == after
    assert f"the next review is due on {after:%Y-%m-%d}" in visible(html)
    assert 'data-review=""' in html
    event = AuditEvent.objects.get(action="reviewed")
    assert event.changes == {
        "review_by": [(today() - timedelta(days=5)).isoformat(), after.isoformat()]
    }
    assert event.key_id == key_id


def test_reviewed_without_a_period_moves_the_date_by_the_default(
    client, emulator, user_credentials
):
    key_id = connected_with_key(client, emulator, user_credentials)
    note(client, key_id, "ci-runner", today())

    client.post(key_url(key_id, "reviewed"), row_post(key_id, "ci-runner"))

    expected = today() + timedelta(days=REVIEW_DAYS_WITHOUT_PERIOD)
    assert KeyNote.objects.get(key_id=key_id).review_by == expected


def test_review_states():
    assert review_state(None, today()) == ""
    assert review_state(today() - timedelta(days=1), today()) == "overdue"
    assert review_state(today(), today()) == "due"
    assert review_state(today() + timedelta(days=14), today()) == "due"
    assert review_state(today() + timedelta(days=15), today()) == ""


# --- the scheduled report ---


def overdue_report(*args) -> str:
    out = io.StringIO()
    call_command("overdue_keys", *args, stdout=out)
    return out.getvalue()


def test_overdue_keys_lists_the_overdue_notes_of_one_app_as_csv_and_json(settings):
    app = settings.KEYADMIN_APPS[0]
    KeyNote.objects.create(
        app_id=app.app_id,
        appservices_user_id="u1",
        key_id="65a1b2c3d4e5f60718293a4b",
        purpose="Billing export",
        ticket="SUP-7",
        review_by=today() - timedelta(days=3),
    )
    KeyNote.objects.create(
        app_id=app.app_id,
        appservices_user_id="u1",
        key_id="65a1b2c3d4e5f60718293a4c",
        review_by=today() + timedelta(days=3),
    )
    KeyNote.objects.create(
        app_id="another-app",
        appservices_user_id="u1",
        key_id="65a1b2c3d4e5f60718293a4d",
        review_by=today() - timedelta(days=3),
    )
    KeyNote.objects.create(
        app_id=app.app_id,
        appservices_user_id="u1",
        key_id="65a1b2c3d4e5f60718293a4e",
        review_by=today() - timedelta(days=3),
        missing_since=timezone.now(),
    )

    rows = list(csv.DictReader(io.StringIO(overdue_report("--app", app.key, "--format", "csv"))))
    listed = json.loads(overdue_report("--app", app.app_id, "--format", "json"))

    assert [row["key_id"] for row in rows] == ["65a1b2c3d4e5f60718293a4b"]
    assert rows[0]["purpose"] == "Billing export" and rows[0]["days_overdue"] == "3"
    assert rows[0]["app_id"] == app.app_id and rows[0]["appservices_user_id"] == "u1"
    assert listed == [{**rows[0], "days_overdue": 3}]


def test_overdue_keys_refuses_an_unknown_app():
    with pytest.raises(CommandError, match="no configured app"):
        overdue_report("--app", "nope", "--format", "csv")


# --- the apps file ---


def test_the_apps_file_takes_a_review_period(tmp_path):
    path = tmp_path / "apps.toml"
    base = '[[apps]]\nkey = "shop"\nname = "Shop"\napp_id = "shop-abcde"\nenvironment = "staging"\n'
    single = {"base_url": "https://x.example", "app_id": "x", "allowed_hosts": ["x.example"]}
    path.write_text(base + "review_days = 90\n")
    assert load_apps(str(path), **single)[0].review_days == 90
    path.write_text(base)
    assert load_apps(str(path), **single)[0].review_days is None
    for bad, says in (("0", "must be 1 to"), ('"90"', "must be a whole number of days")):
        path.write_text(base + f"review_days = {bad}\n")
        with pytest.raises(ImproperlyConfigured, match=f"review_days {says}"):
            load_apps(str(path), **single)
