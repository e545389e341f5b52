"""What keyadmin knows about a key that App Services does not keep: its note and its provenance.

A note (`KeyNote`) is keyed by (app, App Services user, key id) and every read here filters on
all three, so a note never shows for another user or app. Provenance is not a field: it is read
from the audit trail, the CREATE or ROTATE row keyadmin wrote when it made the key. Reading the
notes and the provenance of a whole list costs two queries, whatever its length; none of it
asks App Services anything.
"""

from __future__ import annotations

import itertools
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterator
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

_MADE_BY_KEYADMIN = (AuditEvent.Action.CREATE, AuditEvent.Action.ROTATE)


# --- notes are not for secrets ---

# An App Services key secret is 64 letters and digits (keyadmin/emulator/store.py makes them so);
# a run of 32 is already far past any word, ticket reference or key id (24) a note needs. Tokens
# (JWTs) are refused too.
SECRET_LIKE = re.compile(r"[A-Za-z0-9]{32,}")
SECRET_LENGTH = 64
# A JWT typed back with spaces or line breaks in it: its header and payload both start "eyJ".
_SPACED_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}")

# A secret typed back in pieces: chunks of letters and digits with anything but a letter or digit
# between them (spaces, tabs, line breaks, "-", "_", ".", ",", "/", ":" and the like). A letter of
# another alphabet ends the run: Spanish prose breaks at its first "ó", a secret has none.
_RUN = re.compile(r"[A-Za-z0-9]+(?:[\W_]+[A-Za-z0-9]+)*")
_CHUNK = re.compile(r"[A-Za-z0-9]+")
# Key ids (24 hex), UUIDs (32) and hashes are hex, and a list of them, joined, is a long string of
# letters and digits that changes class at every other character. A hex stretch of 16 (joined)
# ends a run: a real secret holds one about 4 times in 10^8 (2 * 49 * (16/62)^16).
_HEX = re.compile(r"[0-9a-f]{16,}|[0-9A-F]{16,}")

# Why these two thresholds: a 64-character window of the joined chunks is taken for a secret when
# it has both the variety and the class changes of 64 random letters and digits. Measured with the
# emulator's own new_secret() and the notes of tests/keys/test_notes.py, whose property tests
# keep both sides of each threshold (with a margin) true:
# - variety, the Shannon entropy of the window's characters: secrets 5.16 bits (median), none
#   of 10^6 below 4.60; support notes in English reach 4.89 and a paragraph of pangrams 5.36, so
#   entropy only gates (4.5), it cannot tell prose from a secret alone.
# - class changes (lower, upper, digit) between neighbours inside a chunk, not counting the
#   start of a capitalised word or piece ("Phone" in "iPhone", "Key" in "createApiKey"): a secret
#   cut into chunks of 4, the worst cut taken, has 27 (median) and fewer than 8 with probability
#   4.4e-7 (exact, from the 81 class patterns of a chunk); notes in English and Spanish, URLs,
#   e-mail addresses and ticket references reach 3, camelCase API names 5, and timestamps such
#   as 2025-03-31T23:59:59Z in a row 8, but at 3.7 bits. A 64-character run of "k8s e2e
#   i18n"-style acronyms reaches 18 and is refused: to a person it reads like a secret too.
MIN_SECRET_ENTROPY = 4.5
MIN_SECRET_CLASS_CHANGES = 8


def _as_read(text: str) -> str:
    # As a reader would copy it back: fullwidth letters as ASCII, invisible characters (zero-width
    # spaces, soft hyphens) gone; else they hide a secret from the pattern but not from a person.
    return "".join(
        char for char in unicodedata.normalize("NFKC", text) if unicodedata.category(char) != "Cf"
    )


def _kind(char: str) -> str:
    return "u" if char.isupper() else "l" if char.islower() else "d"


def _changes(chunk: str) -> list[int]:
    """1 for each pair of neighbours in `chunk` whose class changes as in random text."""
    kinds = [_kind(char) for char in chunk]
    # How many lowercase letters start at each position: a capitalised piece is "Xyy...".
    lower_run = [0] * (len(chunk) + 1)
    for at in range(len(chunk) - 1, -1, -1):
        lower_run[at] = lower_run[at + 1] + 1 if kinds[at] == "l" else 0
    flags = []
    for at in range(1, len(chunk)):
        before, now = kinds[at - 1], kinds[at]
        capitalised = (before == "u" and now == "l" and lower_run[at] >= 2) or (
            before == "l" and now == "u" and lower_run[at + 1] >= 2
        )
        flags.append(int(before != now and not capitalised))
    return flags


_XLOGX = [0.0] + [count * math.log2(count) for count in range(1, SECRET_LENGTH + 1)]


def _random_windows(chars: str, flags: list[int]) -> Iterator[int]:
    """The start of each SECRET_LENGTH window of `chars` that reads as random.

    flags[i] is 1 when chars[i - 1] to chars[i] is a class change inside a chunk."""
    width = SECRET_LENGTH
    if len(chars) < width:
        return
    sums = list(itertools.accumulate(flags, initial=0))
    if sums[-1] < MIN_SECRET_CLASS_CHANGES:
        return  # prose: not even all of it together changes class often enough
    counts = Counter(chars[:width])
    spread = sum(_XLOGX[count] for count in counts.values())
    for start in range(len(chars) - width + 1):
        if start:
            gone, new = chars[start - 1], chars[start + width - 1]
            if gone != new:
                spread -= _XLOGX[counts[gone]] + _XLOGX[counts[new]]
                counts[gone] -= 1
                counts[new] += 1
                spread += _XLOGX[counts[gone]] + _XLOGX[counts[new]]
        entropy = math.log2(width) - spread / width
        changes = sums[start + width] - sums[start + 1]
        if entropy >= MIN_SECRET_ENTROPY and changes >= MIN_SECRET_CLASS_CHANGES:
            yield start


def _split_secrets(seen: str) -> Iterator[tuple[int, int]]:
    for run in _RUN.finditer(seen):
        chars, at, flags = [], [], []
        for chunk in _CHUNK.finditer(run.group()):
            flags.extend([0, *_changes(chunk.group())])
            chars.append(chunk.group())
            at.extend(range(run.start() + chunk.start(), run.start() + chunk.end()))
        joined = "".join(chars)
        edges = [0, *itertools.chain.from_iterable(m.span() for m in _HEX.finditer(joined))]
        edges.append(len(joined))
        for begin, end in zip(edges[::2], edges[1::2], strict=True):
            for start in _random_windows(joined[begin:end], [0, *flags[begin + 1 : end]]):
                yield at[begin + start], at[begin + start + SECRET_LENGTH - 1] + 1


def _secrets_in(seen: str) -> Iterator[tuple[int, int]]:
    """Where `seen` (as read) holds something shaped like a secret or token: (start, end)."""
    for pattern in (SECRET_LIKE, JWT):
        yield from (found.span() for found in pattern.finditer(seen))
    kept = [at for at, char in enumerate(seen) if not char.isspace()]
    for found in _SPACED_JWT.finditer("".join(seen[at] for at in kept)):
        yield kept[found.start()], kept[found.end() - 1] + 1
    yield from _split_secrets(seen)


def looks_like_secret(text: str) -> bool:
    return next(_secrets_in(_as_read(text)), None) is not None


def secret_fields(texts: dict[str, str]) -> tuple[list[str], bool]:
    """The names of `texts` that hold something shaped like a secret, and whether only together.

    Each text alone first; then all of them in order, as one text: a secret split between the
    purpose and the owner is in neither alone.
    """
    alone = [name for name, text in texts.items() if looks_like_secret(text)]
    if alone:
        return alone, False
    seen = {name: _as_read(text) for name, text in texts.items()}
    spans = list(_secrets_in("\n".join(seen.values())))
    touched, offset = [], 0
    for name, text in seen.items():
        # A field is part of it when letters or digits of its own are (not only a separator).
        chunks = [(offset + m.start(), offset + m.end()) for m in _CHUNK.finditer(text)]
        if any(a < finish and begin < b for a, b in chunks for begin, finish in spans):
            touched.append(name)
        offset += len(text) + 1
    return touched, len(touched) > 1


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
