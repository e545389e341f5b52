"""One action on many keys: a lock-down, its undo, a bulk enable, disable or delete.

Each begins with one list request, made in the same request as the changes: the page that asked
was rendered from a list that may be stale by now, and the ids it posts are the client's word.
The fresh list says which of them are this user's keys (only those reach a URL), which are in
the asked state already (no request), which are gone (no request), and gives the names the audit
rows carry: App Services said them in this request. Then one request per key left, in order,
until the batch's deadline (KEYADMIN_BATCH_DEADLINE, the list included): the keys not reached
are "not attempted", and a retry form posts them and the failed ones again, under the same
batch id. A dead session (401) or rate limiting (429) stops the batch there: every further call
would meet the same answer.

Every row of one batch shares its batch id: one row per key request (its action, the key id
and the listed name) and one summary row with the counts. Undoing a lock-down reads that trail;
an undo's key rows also name the lock-down they undo, for an undo that never wrote its summary.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from django.conf import settings
from django.core import signing
from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from keyadmin import appservices, audit, hotreads
from keyadmin.appservices import MAX_KEYS_PER_USER, ApiKey, check_key_id
from keyadmin.appservices.connection import Connection
from keyadmin.models import AuditEvent, KeyNote, UndoClaim

logger = logging.getLogger("keyadmin.views")

DONE = "done"
ALREADY = "already"
GONE = "gone"
FAILED = "failed"
NOT_ATTEMPTED = "not-attempted"
LEFT = "left"  # undo only: changed by hand since the lock-down, so left as it is
OUTCOMES = (DONE, ALREADY, GONE, FAILED, NOT_ATTEMPTED, LEFT)

# Plain strings, as forms post them and dicts are keyed by them.
ENABLE = AuditEvent.Action.ENABLE.value
DISABLE = AuditEvent.Action.DISABLE.value
DELETE = AuditEvent.Action.DELETE.value
KEY_ACTIONS = (ENABLE, DISABLE, DELETE)

_BATCH_SALT = "keyadmin.keys.batch-id"

# What each outcome is called on the page, per action (a key "already disabled", "disabled").
OUTCOME_TEXTS = {
    ENABLE: {DONE: gettext_lazy("enabled"), ALREADY: gettext_lazy("already enabled")},
    DISABLE: {DONE: gettext_lazy("disabled"), ALREADY: gettext_lazy("already disabled")},
    DELETE: {DONE: gettext_lazy("deleted"), ALREADY: gettext_lazy("deleted")},
}
COMMON_TEXTS = {
    GONE: gettext_lazy("gone: no longer in this user's keys"),
    FAILED: gettext_lazy("failed"),
    NOT_ATTEMPTED: gettext_lazy("not attempted: the time for this action ran out"),
    LEFT: gettext_lazy("left as it is: changed by hand since the lock-down"),
}


@dataclass(frozen=True)
class KeyResult:
    key_id: str
    name: str  # as App Services listed it in this request; "" when the list did not have it
    outcome: str
    action: str
    reason: str = ""  # a failure's message, keyadmin's own words
    disabled: bool | None = None  # the key's state now, when known

    @property
    def label(self) -> str:
        return self.name or self.key_id

    @property
    def text(self) -> str:
        return str(OUTCOME_TEXTS[self.action].get(self.outcome) or COMMON_TEXTS[self.outcome])

    @property
    def retryable(self) -> bool:
        return self.outcome in (FAILED, NOT_ATTEMPTED)

    @property
    def key(self) -> ApiKey | None:
        """The key as it is now, to re-render its row; None when it is gone."""
        if self.disabled is None:
            return None
        return ApiKey(id=self.key_id, name=self.name, disabled=self.disabled)


@dataclass
class Batch:
    action: str
    batch_id: str
    results: list[KeyResult] = field(default_factory=list)
    # Enabled keys the list shows that the confirmation did not (a lock-down): not touched.
    unconfirmed: list[ApiKey] = field(default_factory=list)
    stopped_by: appservices.AppServicesError | None = None
    list_error: appservices.AppServicesError | None = None
    # What each key row's detail starts with: an undo names its lock-down there (undo_plan).
    row_detail: str = ""

    def count(self, *outcomes: str) -> int:
        return sum(1 for result in self.results if result.outcome in outcomes)

    @property
    def counts(self) -> dict[str, int]:
        return {outcome: self.count(outcome) for outcome in OUTCOMES}

    @property
    def tally(self) -> dict[str, int]:
        """The counts by outcome, under names a template can read ("not_attempted")."""
        return {outcome.replace("-", "_"): count for outcome, count in self.counts.items()}

    @property
    def retry_ids(self) -> list[str]:
        return [result.key_id for result in self.results if result.retryable]

    @property
    def complete(self) -> bool:
        return self.list_error is None and not self.retry_ids

    @property
    def session_ended(self) -> bool:
        return isinstance(self.stopped_by, appservices.SessionEnded) or isinstance(
            self.list_error, appservices.SessionEnded
        )

    @property
    def changed_keys(self) -> list[ApiKey]:
        return [result.key for result in self.results if result.key is not None]

    @property
    def gone_ids(self) -> list[str]:
        return [result.key_id for result in self.results if result.key is None]

    def summary(self) -> str:
        """The summary row's detail: what was asked and what came of it, in counts."""
        if self.list_error is not None:
            return f"{self.action}: nothing done, the list failed: {type(self.list_error).__name__}"
        parts = [f"{count} {outcome}" for outcome, count in self.counts.items() if count]
        text = f"{self.action} {len(self.results)} keys: " + (", ".join(parts) or "none")
        if self.unconfirmed:
            text += f"; {len(self.unconfirmed)} enabled keys not in the confirmation left alone"
        if self.stopped_by is not None:
            text += f"; stopped by {type(self.stopped_by).__name__}"
        return text


def new_batch_id() -> str:
    return str(uuid.uuid4())


def batch_token(batch_id: str, connection: Connection, summary_action: str) -> str:
    """What a retry form posts: the batch id, signed with the user, app and kind of action it
    was issued for, so a client cannot file rows under the batch id of someone else's action,
    nor make a bulk action's disables a lock-down that an undo would re-enable."""
    return signing.dumps(
        [batch_id, connection.app_id, connection.user_id, summary_action], salt=_BATCH_SALT
    )


def batch_from_token(token: str | None, connection: Connection, summary_action: str) -> str | None:
    try:
        value = signing.loads(token, salt=_BATCH_SALT) if token else None
    except signing.BadSignature:
        return None
    if not isinstance(value, list) or len(value) != 4:
        return None
    batch_id, app_id, user_id, action = value
    if [app_id, user_id, action] != [connection.app_id, connection.user_id, summary_action]:
        return None
    return batch_id if isinstance(batch_id, str) and is_batch_id(batch_id) else None


def is_batch_id(value: str) -> bool:
    try:
        return str(uuid.UUID(value)) == value
    except (ValueError, TypeError, AttributeError):
        return False


def posted_ids(values: list[str]) -> list[str]:
    """The key ids a form posted that are key ids at all, each once, in order; at most as many
    as one user can have. Anything else never reaches a URL, nor the page."""
    ids: list[str] = []
    for value in values:
        try:
            key_id = check_key_id(value)
        except appservices.InvalidKeyId:
            continue
        if key_id not in ids:
            ids.append(key_id)
    return ids[:MAX_KEYS_PER_USER]


_CALLS: dict[str, Callable[[appservices.UserSession, str], None]] = {
    ENABLE: appservices.UserSession.enable_api_key,
    DISABLE: appservices.UserSession.disable_api_key,
    DELETE: appservices.UserSession.delete_api_key,
}


def already(action: str, key: ApiKey) -> bool:
    return (action == ENABLE and key.enabled) or (action == DISABLE and key.disabled)


def _stops_the_batch(error: appservices.AppServicesError) -> bool:
    return isinstance(error, appservices.SessionEnded) or error.status == 429


def perform(
    request,
    session: appservices.UserSession,
    action: str,
    wanted: list[str],
    *,
    summary_action: str,
    batch_id: str,
    left: list[str] = (),
    confirmed_enabled: bool = False,
    summary_detail: str = "",
    row_detail: str = "",
) -> Batch:
    """List, then `action` on each key of `wanted` this user has and that is not already so.

    `left` (an undo's keys changed by hand since) are reported and not touched. With
    `confirmed_enabled` (a lock-down), enabled keys of the list outside `wanted` are reported as
    not confirmed. The summary row goes in as `summary_action`, its detail after `summary_detail`;
    each key row's detail starts with `row_detail`.
    """
    batch = Batch(action=action, batch_id=batch_id, row_detail=row_detail)
    deadline_at = time.monotonic() + settings.KEYADMIN_BATCH_DEADLINE
    with appservices.calls_end_by(deadline_at):
        try:
            listed = {key.id: key for key in session.list_api_keys()}
        except appservices.AppServicesError as error:
            batch.list_error = error
            logger.warning(
                "%s: the list failed: %s (status %s)", action, type(error).__name__, error.status
            )
            _summarise(request, batch, summary_action, summary_detail)
            return batch
        for key_id in wanted:
            batch.results.append(
                _one(request, session, batch, listed.get(key_id), key_id, deadline_at)
            )
    for key_id in left:
        key = listed.get(key_id)
        outcome = LEFT if key is not None else GONE
        state = key.disabled if key is not None else None
        batch.results.append(
            KeyResult(key_id, key.name if key else "", outcome, action, disabled=state)
        )
    if confirmed_enabled:
        batch.unconfirmed = [key for key in listed.values() if key.enabled and key.id not in wanted]
    if action == DELETE:
        _drop_notes(request.connection, [r.key_id for r in batch.results if r.key is None])
    _summarise(request, batch, summary_action, summary_detail)
    return batch


def _one(
    request,
    session: appservices.UserSession,
    batch: Batch,
    key: ApiKey | None,
    key_id: str,
    deadline_at: float,
) -> KeyResult:
    action = batch.action
    if key is None:
        return KeyResult(key_id, "", GONE, action)
    if already(action, key):
        return KeyResult(key.id, key.name, ALREADY, action, disabled=key.disabled)
    if batch.stopped_by is not None or time.monotonic() >= deadline_at:
        return KeyResult(key.id, key.name, NOT_ATTEMPTED, action, disabled=key.disabled)
    try:
        _CALLS[action](session, key.id)
    except appservices.KeyNotFound as error:
        _record_key(request, batch, key, audit.FAILED, error)
        return KeyResult(key.id, key.name, GONE, action)
    except appservices.AppServicesError as error:
        logger.warning(
            "%s in batch: %s (status %s, %s)",
            action,
            type(error).__name__,
            error.status,
            error.path,
        )
        _record_key(request, batch, key, audit.FAILED, error)
        if _stops_the_batch(error):
            batch.stopped_by = error
        return KeyResult(key.id, key.name, FAILED, action, error.message, key.disabled)
    _record_key(request, batch, key, audit.OK)
    if action == DELETE:
        return KeyResult(key.id, key.name, DONE, action)
    return KeyResult(key.id, key.name, DONE, action, disabled=action == DISABLE)


def _record_key(request, batch: Batch, key: ApiKey, outcome: str, error=None) -> None:
    problem = type(error).__name__ if error is not None else ""
    audit.record(
        request,
        batch.action,
        outcome,
        status=getattr(error, "status", None),
        key_id=key.id,
        key_name=key.name,  # as the list of this request said it
        detail="; ".join(part for part in (batch.row_detail, problem) if part),
        batch_id=batch.batch_id,
    )


def _summarise(request, batch: Batch, summary_action: str, prefix: str) -> None:
    detail = f"{prefix}; {batch.summary()}" if prefix else batch.summary()
    outcome = audit.OK if batch.complete else audit.FAILED
    status = batch.list_error.status if batch.list_error is not None else None
    audit.record(
        request, summary_action, outcome, status=status, detail=detail, batch_id=batch.batch_id
    )


def _drop_notes(connection: Connection, key_ids: list[str]) -> None:
    """The notes of keys this batch deleted (or found gone) go with them."""
    if key_ids:
        KeyNote.objects.filter(
            app_id=connection.app_id,
            appservices_user_id=connection.user_id,
            key_id__in=key_ids,
        ).delete()


# --- the lock-down's trail, for its undo ---


def _of(connection: Connection) -> dict[str, str]:
    return {"app_id": connection.app_id, "appservices_user_id": connection.user_id}


# How an undo's rows name the lock-down they undo: its summary row "undoes lock-down <batch
# id>; …", and each of its key rows "undoes lock-down <batch id>" (undo_row_detail).
UNDO_PREFIX = "undoes lock-down"


def undo_row_detail(lockdown_id: str) -> str:
    """The detail of an undo's key rows (followed by "; <error class>" on a failed one)."""
    return f"{UNDO_PREFIX} {lockdown_id}"


def lockdown_row(batch_id: str) -> AuditEvent | None:
    """The lock-down's (latest) summary row, whoever it was about: the undo page says whose."""
    return AuditEvent.objects.filter(action=AuditEvent.Action.LOCK_DOWN, batch_id=batch_id).first()


def disabled_by(connection: Connection, batch_id: str) -> list[AuditEvent]:
    """The keys the lock-down `batch_id` disabled, of this connection's user and app: its
    DISABLE rows with outcome ok, oldest first, one per key."""
    rows = AuditEvent.objects.filter(
        action=DISABLE, outcome=audit.OK, batch_id=batch_id, **_of(connection)
    ).order_by("at", "id")
    seen: dict[str, AuditEvent] = {}
    for row in rows:
        seen.setdefault(row.key_id, row)
    return list(seen.values())


def _undo_rows(connection: Connection, batch_id: str):
    """The summary rows of the undos of lock-down `batch_id` that ran (refusals did nothing)."""
    return AuditEvent.objects.filter(
        action=AuditEvent.Action.LOCK_DOWN_UNDO,
        detail__startswith=f"{UNDO_PREFIX} {batch_id}",
        **_of(connection),
    ).exclude(outcome=audit.DENIED)


def last_undo(connection: Connection, batch_id: str) -> AuditEvent | None:
    """The latest undo of lock-down `batch_id` that ran: who undid it, and when."""
    return _undo_rows(connection, batch_id).order_by("-at", "-id").first()


def undo_plan(connection: Connection, batch_id: str) -> tuple[list[AuditEvent], list[AuditEvent]]:
    """(rows of keys to re-enable, rows of keys to leave as they are).

    A key is re-enabled only while the lock-down's disable is the last change keyadmin made to
    it: a key enabled, disabled or deleted through keyadmin afterwards (by hand, or by a later
    lock-down) was decided on since, and that decision stands. A key an earlier undo of this
    lock-down re-enabled is neither: it is done. A change made outside keyadmin is not in the
    trail; the fresh list at undo time shows it.

    An undo's re-enable is known by its row alone, not only by the summary row that ends its
    batch: an undo whose process died after a key's request and before its summary (a worker
    timeout, a deploy, a bug) left that key's row and no summary, and its key was then filed
    under "changed by hand since". Each key row is written right after its request, so the row
    is there whenever the change is; a "started" row, or the claim's batch id, would say
    nothing of which keys were done, and the claim is a lock, gone once released or taken over.
    `undone_by` still counts the batches of the summary rows, for undos whose key rows were
    written before those rows named their lock-down.
    """
    undone_by = set(_undo_rows(connection, batch_id).values_list("batch_id", flat=True))
    undo_mark = undo_row_detail(batch_id)
    again, left = [], []
    for row in disabled_by(connection, batch_id):
        latest = (
            AuditEvent.objects.filter(
                key_id=row.key_id, action__in=KEY_ACTIONS, outcome=audit.OK, **_of(connection)
            )
            .order_by("-at", "-id")
            .first()
        )
        if latest is not None and (
            latest.batch_id in undone_by or (latest.action == ENABLE and latest.detail == undo_mark)
        ):
            continue  # an earlier undo of this lock-down re-enabled it: done
        mine = latest is not None and latest.batch_id == batch_id and latest.action == DISABLE
        (again if mine else left).append(row)
    return again, left


# --- one undo of a lock-down at a time ---

# How long a claim outlives its undo's deadline: every App Services call of the undo ends by
# KEYADMIN_BATCH_DEADLINE (appservices.calls_end_by); what follows is a few audit inserts.
UNDO_CLAIM_MARGIN = 60  # seconds


@dataclass(frozen=True)
class UndoTurn:
    """Whether this request may undo the lock-down now: `claim` is its own when `ours`, else
    that of the undo under way."""

    claim: UndoClaim
    ours: bool


def claim_undo(request, lockdown_id: str) -> UndoTurn:
    """Claim the undo of lock-down `lockdown_id` for this request, before any upstream request.

    The claim is a row keyed by the lock-down's batch id, inserted in a transaction of its own:
    the database lets one insert win whatever the number of workers and instances. It is
    released (`release_undo`) when the undo ends, however it ends, so that the retry its
    results offer runs at once; and it expires, because a process killed mid-undo (a worker
    timeout, a deploy, the OOM killer) never runs that release. Expiry alone would hold a
    retry back for a minute; release alone would block the undo forever after such a crash.
    An expired claim is taken over by an UPDATE that only matches while it is still expired,
    so two requests never take over one claim.
    """
    for _attempt in range(3):
        now = timezone.now()
        fields = {
            "undo_batch_id": new_batch_id(),
            "staff_name": audit.staff_name(request),
            "claimed_at": now,
            "expires_at": now
            + timedelta(seconds=settings.KEYADMIN_BATCH_DEADLINE + UNDO_CLAIM_MARGIN),
        }
        claim = UndoClaim(lockdown_batch_id=lockdown_id, **fields)
        try:
            with transaction.atomic():
                claim.save(force_insert=True)
            return UndoTurn(claim, ours=True)
        except IntegrityError:
            pass
        expired = UndoClaim.objects.filter(lockdown_batch_id=lockdown_id, expires_at__lte=now)
        if expired.update(**fields):
            logger.warning("undo of a lock-down: took over a claim that expired")
            return UndoTurn(claim, ours=True)
        holder = UndoClaim.objects.filter(lockdown_batch_id=lockdown_id).first()
        if holder is not None:
            return UndoTurn(holder, ours=False)
        # Released between the insert and the read: the undo it held is done; claim again.
    raise DatabaseError("the undo claim neither held nor free after three attempts")


def release_undo(claim: UndoClaim) -> None:
    """The undo holding `claim` has ended: free the lock-down, unless its claim expired and
    another undo took it over since (that one is not ours to free)."""
    try:
        UndoClaim.objects.filter(
            lockdown_batch_id=claim.lockdown_batch_id, undo_batch_id=claim.undo_batch_id
        ).delete()
    except DatabaseError:
        # The undo itself is over; its claim expires instead.
        logger.exception("could not release the claim of an undo")


def undo_under_way(lockdown_id: str) -> UndoClaim | None:
    """The claim of an undo of `lockdown_id` running now, if any (an expired one is not)."""
    return UndoClaim.objects.filter(
        lockdown_batch_id=lockdown_id, expires_at__gt=timezone.now()
    ).first()


def latest_lockdown(connection: Connection, key_ids: list[str]) -> AuditEvent | None:
    """The lock-down the keys page offers to undo: of this user's lock-downs that still have one
    of the listed `key_ids` to re-enable, the latest (its latest summary row, a retry's when
    retried). None otherwise.

    A lock-down has a key to re-enable while its disable of that key is the last change
    keyadmin made to it (as `undo_plan` has it) and no undo of it that ended complete (outcome
    ok) came after that disable: such an undo re-enabled every key it could, and one it found
    already enabled or gone elsewhere left no row of its own. So a row that changed nothing
    hides nothing: a refused undo, one whose list or every enable failed, a later lock-down of
    no key or of keys already disabled. Every offer is one `undo_plan` would run (its keys to
    re-enable include these), and it is read from the trail alone: one query when no disable of
    a batch stands (most lists), two otherwise.
    """
    standing = hotreads.standing_disables(connection.app_id, connection.user_id, key_ids)
    if not standing:
        return None
    batches = {batch_id for _key, batch_id, _at, _pk in standing}
    undone = Q()
    for batch_id in batches:
        undone |= Q(detail__startswith=f"{UNDO_PREFIX} {batch_id}")
    rows = AuditEvent.objects.filter(
        Q(action=AuditEvent.Action.LOCK_DOWN, batch_id__in=batches)
        | Q(undone, action=AuditEvent.Action.LOCK_DOWN_UNDO, outcome=audit.OK),
        **_of(connection),
    ).order_by("-at", "-id")
    summaries: dict[str, AuditEvent] = {}
    completed: dict[str, list[tuple]] = {batch_id: [] for batch_id in batches}
    for row in rows:
        if row.action == AuditEvent.Action.LOCK_DOWN:
            summaries.setdefault(row.batch_id, row)
            continue
        for batch_id in batches:
            if row.detail.startswith(f"{UNDO_PREFIX} {batch_id}"):
                completed[batch_id].append((row.at, row.pk))
    live = [
        summaries[batch_id]
        for _key, batch_id, at, pk in standing
        if batch_id in summaries and all(undo <= (at, pk) for undo in completed[batch_id])
    ]
    return max(live, key=lambda row: (row.at, row.pk), default=None)


def outcome_message(batch: Batch) -> str:
    """Why a batch stopped before its end, in keyadmin's words; "" when it did not."""
    if batch.list_error is not None:
        return _("The keys could not be listed, so nothing was changed: %(problem)s") % {
            "problem": batch.list_error.message
        }
    if batch.stopped_by is not None:
        return _("Stopped after a key failed: %(problem)s") % {"problem": batch.stopped_by.message}
    return ""
