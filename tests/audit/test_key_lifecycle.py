"""The audit trail of notes, reviews and rotations, and provenance read back from it."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

from django.utils import timezone

from keyadmin.appservices import ApiKey
from keyadmin.keys import notes
from keyadmin.models import AuditEvent, KeyNote
from tests.sso.staff import configure, provision_staff

APP, USER = "shop-abcde", "6500000000000000000000aa"
MADE, ROTATED, OUTSIDE = "65a1b2c3d4e5f60718293a4b", "65a1b2c3d4e5f60718293a4c", "65a1b2c3d4e5f607"

CONNECTION = SimpleNamespace(app_id=APP, user_id=USER)


def event(**fields) -> AuditEvent:
    row = AuditEvent(**{"app_id": APP, "appservices_user_id": USER, "outcome": "ok", **fields})
    row.save()
    return row


def key(key_id: str, name: str = "k") -> ApiKey:
    return ApiKey(id=key_id.ljust(24, "0"), name=name, disabled=False)


def test_provenance_is_the_ok_create_or_rotate_row_of_the_same_app_user_and_key():
    when = timezone.now() - timedelta(days=3)
    event(action="create", key_id=MADE, staff_name="Sam Support", at=when, ticket="SUP-9")
    event(action="create", key_id=MADE, staff_name="Later Larry")  # a later row changes nothing
    event(action="rotate", key_id=ROTATED, staff_name="Rita Rotate", detail=f"successor of {MADE}")
    event(action="create", outcome="failed", key_id=OUTSIDE.ljust(24, "0"), staff_name="F")
    event(action="create", key_id=OUTSIDE.ljust(24, "0"), staff_name="X", app_id="other-app")
    event(action="create", key_id=OUTSIDE.ljust(24, "0"), staff_name="Y", appservices_user_id="u")

    made, rotated, outside = notes.annotate(CONNECTION, [key(MADE), key(ROTATED), key(OUTSIDE)])

    assert (made.provenance.staff, made.provenance.at, made.provenance.ticket) == (
        "Sam Support",
        when,
        "SUP-9",
    )
    assert not made.provenance.rotated
    assert rotated.provenance.staff == "Rita Rotate" and rotated.provenance.rotated
    assert outside.provenance is None  # a failed create, another app, another user: not ours


def test_a_whole_list_costs_two_queries(django_assert_num_queries):
    keys = [key(f"65a1b2c3d4e5f607182930{n:02d}") for n in range(20)]

    with django_assert_num_queries(2):
        notes.annotate(CONNECTION, keys)


def test_a_note_change_records_only_what_changed():
    first = notes.save_note(CONNECTION, MADE, {"purpose": "CI", "ticket": "", "owner": ""})
    again = notes.save_note(CONNECTION, MADE, {"purpose": "CI", "ticket": "SUP-1", "owner": ""})
    same = notes.save_note(CONNECTION, MADE, {"purpose": "CI", "ticket": "SUP-1", "owner": ""})

    assert first.changes == {"purpose": ["", "CI"]}
    assert again.changes == {"ticket": ["", "SUP-1"]}
    assert same.changes == {}
    assert KeyNote.objects.get(key_id=MADE).ticket == "SUP-1"


def test_rotation_links_the_notes_and_the_successor_inherits_why_it_exists():
    notes.save_note(
        CONNECTION, MADE, {"purpose": "CI", "owner": "team", "review_by": timezone.localdate()}
    )

    notes.link_rotation(CONNECTION, MADE, ROTATED)

    old, new = KeyNote.objects.get(key_id=MADE), KeyNote.objects.get(key_id=ROTATED)
    assert (old.superseded_by, new.supersedes) == (ROTATED, MADE)
    assert (new.purpose, new.owner, new.review_by) == ("CI", "team", timezone.localdate())
    assert (new.app_id, new.appservices_user_id) == (APP, USER)


def test_missing_notes_are_marked_once_and_cleared_when_the_key_is_back():
    notes.save_note(CONNECTION, MADE, {"purpose": "CI"})
    notes.save_note(CONNECTION, ROTATED, {"purpose": "other"})
    KeyNote.objects.create(app_id="other-app", appservices_user_id=USER, key_id=ROTATED)

    [listed], [gone] = notes.annotate_listed(CONNECTION, [key(MADE)])
    first_seen = gone.missing_since
    _, [still] = notes.annotate_listed(CONNECTION, [key(MADE)])

    assert listed.id == MADE and listed.note.purpose == "CI"
    assert gone.key_id == ROTATED and gone.purpose == "other"
    assert first_seen is not None and still.missing_since == first_seen
    assert KeyNote.objects.get(app_id=APP, key_id=ROTATED).missing_since == first_seen
    assert KeyNote.objects.get(app_id="other-app").missing_since is None  # another app's

    back, gone_now = notes.annotate_listed(CONNECTION, [key(MADE), key(ROTATED)])

    assert gone_now == [] and [noted.note.purpose for noted in back] == ["CI", "other"]
    assert back[1].note.missing_since is None
    assert KeyNote.objects.get(app_id=APP, key_id=ROTATED).missing_since is None


def test_a_list_with_no_keys_left_shows_every_note_as_missing():
    notes.save_note(CONNECTION, MADE, {"purpose": "CI"})

    listed, [gone] = notes.annotate_listed(CONNECTION, [])

    assert listed == [] and gone.key_id == MADE and gone.missing_since is not None


def test_the_audit_page_shows_what_a_note_edit_changed(client, settings):
    configure(settings)
    provision_staff(client, "auditor", name="Ada Auditor")
    event(action="note", key_id=MADE, changes={"ticket": ["SUP-1", "SUP-2"], "owner": ["", "ops"]})

    page = client.get("/audit/").content.decode()

    assert '<code translate="no">ticket</code>: <span translate="no">SUP-1</span> → ' in page
    assert '<span translate="no">SUP-2</span>' in page
    assert '<code translate="no">owner</code>: <span translate="no">—</span>' in page
