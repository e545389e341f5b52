"""The auditor's page (`/audit/`) and its CSV export (`/audit/export.csv`)."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import timedelta

import pytest
from django.utils import timezone

from keyadmin.audit.views import FORMULA_STARTS, PAGE_SIZE, csv_cell
from keyadmin.models import AuditEvent
from tests.sso.fixtures import AUDITORS, OPERATORS, STAFF, use_remote_user_mode

URL = "/audit/"
EXPORT = "/audit/export.csv"
AUDITOR = {
    "REMOTE_USER": "ada",
    "OIDC_CLAIM_name": "Ada Auditor",
    "OIDC_CLAIM_groups": f"{STAFF},{AUDITORS}",
}
OPERATOR = {"REMOTE_USER": "olly", "OIDC_CLAIM_groups": f"{STAFF},{OPERATORS}"}


@pytest.fixture(autouse=True)
def groups_mode(settings):
    use_remote_user_mode(settings)


def add(action="create", outcome="ok", days_ago=0, **fields) -> AuditEvent:
    event = AuditEvent(
        action=action,
        outcome=outcome,
        at=timezone.now() - timedelta(days=days_ago),
        **fields,
    )
    event.save()
    return event


def shown(response) -> list[AuditEvent]:
    return list(response.context["page"].object_list)


def test_it_shows_the_trail_to_auditors_newest_first(client):
    add(action="create", key_name="older", days_ago=2)
    add(action="delete", key_name="newer", days_ago=1)

    response = client.get(URL, **AUDITOR)

    assert response.status_code == 200
    html = response.content.decode()
    assert "Audit trail" in html
    assert [event.key_name for event in shown(response) if event.key_name] == ["newer", "older"]
    assert "no-store" in response["Cache-Control"]


def test_it_refuses_everyone_else(client):
    assert client.get(URL, **OPERATOR).status_code == 403
    assert client.get(EXPORT, **OPERATOR).status_code == 403
    assert client.get(URL).status_code == 401


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"action": "delete"}, ["gone"]),
        ({"outcome": "failed"}, ["broken"]),
        ({"staff": "olly"}, ["gone"]),
        ({"staff": "Sam"}, ["ci", "broken"]),
        ({"key": "65a1b2c3d4e5f60718293a4b"}, ["ci"]),
        ({"key": "brok"}, ["broken"]),
    ],
)
def test_it_filters(client, query, expected):
    add(action="create", key_name="ci", key_id="65a1b2c3d4e5f60718293a4b", staff_name="Sam")
    add(action="create", outcome="failed", key_name="broken", staff_name="Sam S", status=503)
    add(action="delete", key_name="gone", staff_subject="olly")

    response = client.get(URL, query, **AUDITOR)

    names = [event.key_name for event in shown(response) if event.key_name]
    assert sorted(names) == sorted(expected)


def test_it_filters_by_an_inclusive_date_range(client):
    add(key_name="before", days_ago=10)
    add(key_name="inside", days_ago=5)
    add(key_name="after", days_ago=1)
    today = timezone.now().date()

    response = client.get(
        URL,
        {"since": str(today - timedelta(days=6)), "until": str(today - timedelta(days=5))},
        **AUDITOR,
    )

    assert [event.key_name for event in shown(response) if event.key_name] == ["inside"]


def test_it_pages_and_keeps_the_filter_in_the_links(client):
    for n in range(PAGE_SIZE + 5):
        add(action="enable", key_name=f"k{n}")

    first = client.get(URL, {"action": "enable"}, **AUDITOR)
    second = client.get(URL, {"action": "enable", "page": 2}, **AUDITOR)

    assert len(shown(first)) == PAGE_SIZE
    assert len(shown(second)) == 5
    assert "action=enable&amp;page=2" in first.content.decode()


def test_it_exports_the_filtered_trail_as_csv(client):
    add(action="create", key_name="ci", key_id="65a1b2c3d4e5f60718293a4b", status=201)
    add(action="delete", key_name="other")

    response = client.get(EXPORT, {"action": "create"}, **AUDITOR)

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    assert response["Content-Disposition"].startswith('attachment; filename="keyadmin-audit-')
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [(row["action"], row["key_name"], row["status"]) for row in rows] == [
        ("create", "ci", "201")
    ]
    export = AuditEvent.objects.get(action="audit-export")
    assert export.staff_subject == "ada"
    assert "action=create" in export.detail


def test_the_export_neutralises_spreadsheet_formulas(client):
    add(action="create", key_name="-cmd", staff_name='=HYPERLINK("http://evil")', detail="@SUM(A1)")

    response = client.get(EXPORT, {"action": "create"}, **AUDITOR)

    row = next(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert row["key_name"] == "'-cmd"
    assert row["staff_name"] == '\'=HYPERLINK("http://evil")'
    assert row["detail"] == "'@SUM(A1)"


def test_the_export_quotes_every_field(client):
    add(action="create", key_name="ci", status=201)

    response = client.get(EXPORT, {"action": "create"}, **AUDITOR)

    header, row = b"".join(response.streaming_content).decode().splitlines()[:2]
    assert header.startswith('"at","action","outcome","status",')
    assert row.count('"') == 2 * len(header.split(","))
    assert ',"create","ok","201",' in row


SPLIT_POINTS = re.compile(r"[;,\r\n]")
HOSTILE = {
    "key_name": ",=cmd|' /C calc'!A0",
    "staff_name": 'Ada;=HYPERLINK("http://evil")',
    "detail": "ok; +1 , -2;@SUM(A1)\n=3\r\n\t=4;;=5",
}


def test_no_cell_starts_a_formula_wherever_a_spreadsheet_splits(client):
    add(action="create", **HOSTILE)

    response = client.get(EXPORT, {"action": "create"}, **AUDITOR)

    raw = b"".join(response.streaming_content).decode()
    cells = [piece.strip(' "') for piece in SPLIT_POINTS.split(raw)]
    assert not [cell for cell in cells if cell.startswith(FORMULA_STARTS)]
    row = next(csv.DictReader(io.StringIO(raw)))
    assert row["key_name"] == ",'=cmd|' /C calc'!A0"
    assert row["staff_name"] == 'Ada;\'=HYPERLINK("http://evil")'


@pytest.mark.parametrize("value", ["=1+1", "+1", "-1", "@x", "\tx", "\rx"])
def test_csv_cell_prefixes_formula_starts(value):
    assert csv_cell(value) == "'" + value


def test_csv_cell_leaves_plain_values_alone():
    assert csv_cell("ci-deploy") == "ci-deploy"
    assert csv_cell(None) == ""
    assert csv_cell(204) == "204"


def test_it_shows_filters_and_exports_the_batch_id_and_links_a_lock_down_to_its_undo(client):
    batch = "0b7a5e0c-3f43-4c1e-9d6a-1f2e3d4c5b6a"
    add(action="disable", key_name="in-batch", batch_id=batch)
    add(action="lock-down", batch_id=batch, detail="disable 1 keys: 1 done")
    add(action="disable", key_name="by-hand")

    response = client.get(URL, {"batch": batch}, **AUDITOR)
    exported = client.get(EXPORT, {"batch": batch}, **AUDITOR)

    assert [event.action for event in shown(response)] == ["lock-down", "disable"]
    html = response.content.decode()
    assert f'<a href="?batch={batch}"><code translate="no">{batch}</code></a>' in html
    assert f'href="/keys/lock-down/{batch}/undo/">Undo this lock-down</a>' in html
    assert html.count("Undo this lock-down") == 1  # on the lock-down row only
    rows = list(csv.DictReader(io.StringIO(b"".join(exported.streaming_content).decode())))
    assert [(row["action"], row["batch_id"]) for row in rows] == [
        ("lock-down", batch),
        ("disable", batch),
    ]


def test_the_export_has_what_a_note_edit_changed_as_json(client):
    add(action="note", changes={"ticket": ["SUP-1", "SUP-2"]})
    add(action="create", key_name="ci")

    response = client.get(EXPORT, **AUDITOR)

    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    changes = {row["action"]: row["changes"] for row in rows}
    assert json.loads(changes["note"]) == {"ticket": ["SUP-1", "SUP-2"]}
    assert changes["create"] == ""


def test_rows_made_while_acting_show_and_export_the_end_of_the_time_box(client):
    until = timezone.now().replace(microsecond=0) + timedelta(minutes=15)
    add(action="create", acting_for="cus_bob", ticket="SUP-3", acting_until=until)
    add(action="create", key_name="own-key")

    page = client.get(URL, **AUDITOR).content.decode()
    exported = client.get(EXPORT, **AUDITOR)

    assert f"until {until:%Y-%m-%d %H:%M}" in page
    assert page.count("until ") == 1
    rows = list(csv.DictReader(io.StringIO(b"".join(exported.streaming_content).decode())))
    assert {row["acting_for"]: row["acting_until"] for row in rows} == {
        "cus_bob": until.isoformat(),
        "": "",
    }
