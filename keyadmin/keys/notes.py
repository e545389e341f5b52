"""What keyadmin knows about a key that App Services does not keep: its note and its provenance.

A note (`KeyNote`) is keyed by (app, App Services user, key id) and every read here filters on
all three, so a note never shows for another user or app. Provenance is not a field: it is read
from the audit trail, the CREATE or ROTATE row keyadmin wrote when it made the key. Reading the
notes and the provenance of a whole list costs two queries, whatever its length; none of it
asks App Services anything.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.utils import timezone
from django.utils.http import urlencode

from keyadmin import hotreads
from keyadmin.appservices import MAX_KEY_NAME_LENGTH, ApiKey
from keyadmin.appservices.apps import AppConfig
from keyadmin.appservices.connection import Connection
from keyadmin.models import AuditEvent, KeyNote
from keyadmin.redact import JWT

# A review is "due" from this many days before its date, "overdue" after it.
REVIEW_DUE_DAYS = 14
# "Reviewed" on an app without a review period of its own moves the date on by this much.
REVIEW_DAYS_WITHOUT_PERIOD = 90

NOTE_FIELDS = ("purpose", "ticket", "owner", "review_by")
# Copied to the successor of a rotated key: why it exists does not change with its secret.
INHERITED_FIELDS = NOTE_FIELDS

# An App Services key secret is 64 letters and digits; a run of 32 is already far past any word,
# ticket reference or key id (24) a note needs. Tokens (JWTs) are refused too.
SECRET_LIKE = re.compile(r"[A-Za-z0-9]{32,}")

_MADE_BY_KEYADMIN = (AuditEvent.Action.CREATE, AuditEvent.Action.ROTATE)


def looks_like_secret(text: str) -> bool:
    # As a reader would copy it back: fullwidth letters as ASCII, invisible characters (zero-width
    # spaces, soft hyphens) gone; else they hide a secret from the pattern but not from a person.
    seen = "".join(
        char for char in unicodedata.normalize("NFKC", text) if unicodedata.category(char) != "Cf"
    )
    return bool(SECRET_LIKE.search(seen) or JWT.search(seen))


@dataclass(frozen=True)
class Provenance:
    """Who made a key through keyadmin, when, and (while acting for a customer) for which ticket."""

    staff: str
    at: datetime
    ticket: str
    rotated: bool


@dataclass(frozen=True)
class NotedKey(ApiKey):
    """A key as the page shows it: App Services' fields and what keyadmin knows about it."""

    note: KeyNote | None = None
    provenance: Provenance | None = None
    # The successor's name when it is among the keys annotated with this one; a free name for the
    # next rotation.
    successor_name: str = ""
    rotate_to: str = ""
    # The rotate form's resubmit nonce (keys/resubmit.py), issued when the form is rendered.
    rotate_nonce: str = ""
    today: date = field(default_factory=lambda: timezone.localdate())

    # A plain ApiKey rendered in a row (a view that did not annotate it) has no note and no
    # provenance to claim: its Note cell stays empty rather than say "made outside keyadmin".
    noted = True

    @property
    def review(self) -> str:
        """ "overdue", "due" or "" (no review date, or not soon)."""
        return review_state(self.note.review_by if self.note else None, self.today)

    @property
    def superseded_by(self) -> str:
        return self.note.superseded_by if self.note else ""

    @property
    def shown(self) -> tuple:
        """Everything of this key that its row shows besides id, name and state, as plain values:
        what a reused row ({% samerow %}) is kept for; cheaper than a dozen template lookups."""
        note, made = self.note, self.provenance
        return (
            self.review,
            self.superseded_by,
            self.successor_name,
            self.rotate_to,
            *(
                (note.purpose, note.ticket, note.owner, note.review_by, note.supersedes)
                if note
                else ()
            ),
            *((made.staff, made.at, made.ticket) if made else ()),
        )

    @property
    def row_query(self) -> str:
        """What a row's "Edit note" and "Rotate" links send, as row forms post it: the state the
        page shows (display only) and the successor name free among the listed keys."""
        return urlencode(
            {
                "name": self.name,
                "disabled": "true" if self.disabled else "false",
                "to": self.rotate_to,
            }
        )


def review_state(review_by: date | None, today: date) -> str:
    if review_by is None:
        return ""
    if review_by < today:
        return "overdue"
    if review_by <= today + timedelta(days=REVIEW_DUE_DAYS):
        return "due"
    return ""


def default_review_by(app: AppConfig, today: date | None = None) -> date | None:
    """The review date a new key of `app` gets unless the form says otherwise."""
    if app.review_days is None:
        return None
    return (today or timezone.localdate()) + timedelta(days=app.review_days)


def next_review(app: AppConfig, today: date | None = None) -> date:
    """Where "Reviewed" moves a key's review date: one review period from today."""
    days = app.review_days or REVIEW_DAYS_WITHOUT_PERIOD
    return (today or timezone.localdate()) + timedelta(days=days)


def notes_of(connection: Connection):
    """The notes of the connected user in the connected app, and no one else's."""
    return KeyNote.objects.filter(app_id=connection.app_id, appservices_user_id=connection.user_id)


def note_of(connection: Connection, key_id: str) -> KeyNote | None:
    return notes_of(connection).filter(key_id=key_id).first()


def _provenance(connection: Connection, key_ids: list[str]) -> dict[str, Provenance]:
    rows = hotreads.made_rows(
        _MADE_BY_KEYADMIN, AuditEvent.Outcome.OK, connection.app_id, connection.user_id, key_ids
    )
    found: dict[str, Provenance] = {}
    for _app_id, key_id, staff, at, ticket, action in rows:
        # A key id is made once: the first row is the one that made it.
        found.setdefault(key_id, Provenance(staff, at, ticket, action == AuditEvent.Action.ROTATE))
    return found


def successor_suggestion(name: str, taken: set[str]) -> str:
    """A free name for the key that replaces `name`: name-2, or one more than its number."""
    stem, number = name, 1
    found = re.fullmatch(r"(.*\D)-(\d{1,6})", name)
    if found:
        stem, number = found.group(1), int(found.group(2))
    while True:
        number += 1
        suffix = f"-{number}"
        candidate = stem[: MAX_KEY_NAME_LENGTH - len(suffix)] + suffix
        if candidate not in taken:
            return candidate


def annotate(connection: Connection, keys: list[ApiKey]) -> list[NotedKey]:
    """`keys` with their notes and provenance: two queries, none upstream.

    The successor name each row proposes for a rotation is free among `keys`: among all of the
    user's keys for a list answer; a row rendered alone may propose a taken one, which the create
    then refuses in place.
    """
    if not keys:
        return []
    ids = [key.id for key in keys]
    notes = {note.key_id: note for note in notes_of(connection).filter(key_id__in=ids)}
    made = _provenance(connection, ids)
    return _noted(keys, notes, made)


def annotate_one(connection: Connection, key: ApiKey) -> NotedKey:
    """One key (a row action's row) as `annotate` makes it, read in one statement."""
    note, made = hotreads.key_note(
        connection.app_id, connection.user_id, key.id, _MADE_BY_KEYADMIN, AuditEvent.Outcome.OK
    )
    provenance = {}
    if made is not None:
        staff, at, ticket, action = made
        provenance[key.id] = Provenance(staff, at, ticket, action == AuditEvent.Action.ROTATE)
    return _noted([key], {key.id: note} if note is not None else {}, provenance)[0]


def _noted(
    keys: list[ApiKey], notes: dict[str, KeyNote], made: dict[str, Provenance]
) -> list[NotedKey]:
    names = {key.id: key.name for key in keys}
    taken = set(names.values())
    today = timezone.localdate()
    return [
        NotedKey(
            id=key.id,
            name=key.name,
            disabled=key.disabled,
            note=notes.get(key.id),
            provenance=made.get(key.id),
            successor_name=names.get(notes[key.id].superseded_by, "") if key.id in notes else "",
            rotate_to=successor_suggestion(key.name or "key", taken),
            today=today,
        )
        for key in keys
    ]


def annotate_listed(
    connection: Connection, keys: list[ApiKey]
) -> tuple[list[NotedKey], list[KeyNote]]:
    """A list answer's `keys` as `annotate` makes them, and the notes whose key the list lacks
    (deleted outside keyadmin), oldest missing first: the user's notes read once for both.

    Newly missing ones get `missing_since` now, so the retention command can prune them later;
    a note whose key is listed again loses it: one more statement per kind of change.
    """
    everything = hotreads.user_notes(connection.app_id, connection.user_id)
    ids = {key.id for key in keys}
    listed = {note.key_id: note for note in everything if note.key_id in ids}
    made = _provenance(connection, [key.id for key in keys]) if keys else {}
    back = [note.key_id for note in listed.values() if note.missing_since is not None]
    gone = [note for note in everything if note.key_id not in ids]
    newly = [note for note in gone if note.missing_since is None]
    if back:
        notes_of(connection).filter(key_id__in=back).update(missing_since=None)
        for note in listed.values():
            note.missing_since = None
    if newly:
        now = timezone.now()
        notes_of(connection).filter(key_id__in=[note.key_id for note in newly]).update(
            missing_since=now
        )
        for note in newly:
            note.missing_since = now
    gone.sort(key=lambda note: (note.missing_since, note.key_id))
    return _noted(keys, listed, made), gone


@dataclass(frozen=True)
class NoteChange:
    note: KeyNote
    changes: dict[str, list[str]]


def _shown(value) -> str:
    return value.isoformat() if isinstance(value, date) else str(value or "")


def save_note(connection: Connection, key_id: str, values: dict) -> NoteChange:
    """Store the note's new `values` (some of NOTE_FIELDS); what changed, as {"field": [old, new]}.

    Only the fields that changed are in `changes`; nothing is written when none did.
    """
    note = note_of(connection, key_id) or KeyNote(
        app_id=connection.app_id, appservices_user_id=connection.user_id, key_id=key_id
    )
    changes = {}
    for name in NOTE_FIELDS:
        if name not in values:
            continue
        old, new = getattr(note, name), values[name]
        if _shown(old) != _shown(new):
            changes[name] = [_shown(old), _shown(new)]
            setattr(note, name, new)
    if changes:
        note.updated_at = timezone.now()
        note.save()
    return NoteChange(note, changes)


def link_rotation(connection: Connection, old_id: str, new_id: str) -> KeyNote:
    """Mark `old_id` superseded by `new_id` and give the successor the old key's note."""
    old = note_of(connection, old_id) or KeyNote(
        app_id=connection.app_id, appservices_user_id=connection.user_id, key_id=old_id
    )
    old.superseded_by = new_id
    old.updated_at = timezone.now()
    old.save()
    new, _ = KeyNote.objects.update_or_create(
        app_id=connection.app_id,
        appservices_user_id=connection.user_id,
        key_id=new_id,
        defaults={
            **{name: getattr(old, name) for name in INHERITED_FIELDS},
            "supersedes": old_id,
            "updated_at": timezone.now(),
        },
    )
    return new


def forget(connection: Connection, key_id: str) -> None:
    """The key was deleted through keyadmin: its note goes with it, and a key it superseded is
    no longer superseded (a successor deleted before it was used)."""
    mine = notes_of(connection)
    mine.filter(key_id=key_id).delete()
    mine.filter(superseded_by=key_id).update(superseded_by="", updated_at=timezone.now())


def overdue(app_id: str, today: date | None = None):
    """Every note of `app_id` past its review date whose key was still listed last time."""
    return KeyNote.objects.filter(
        app_id=app_id, review_by__lt=today or timezone.localdate(), missing_since__isnull=True
    ).order_by("review_by", "appservices_user_id", "key_id")
