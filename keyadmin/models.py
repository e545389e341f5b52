"""keyadmin's own tables: who the staff are, the append-only audit trail, sign-in counters.

A staff member is matched by the identity provider's issuer and subject, never by email: an email
address can be reassigned or re-verified elsewhere, a (issuer, subject) pair cannot. The email is
kept for display only.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class Staff(models.Model):
    """The SSO identity behind one Django user; refreshed at every sign-in."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    issuer = models.CharField(max_length=255)
    subject = models.CharField(max_length=255)
    display_name = models.CharField(max_length=200, blank=True)
    email = models.CharField(max_length=254, blank=True)  # shown, never matched on
    groups = models.JSONField(default=list, blank=True)  # the groups seen at the last sign-in
    created_at = models.DateTimeField(default=timezone.now)
    last_sign_in_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = (
            models.UniqueConstraint(fields=("issuer", "subject"), name="staff_issuer_subject"),
        )

    def __str__(self) -> str:
        return self.display_name or self.subject


class AppendOnly(Exception):
    """An audit event was about to be changed or deleted outside `prune_audit`."""


class AuditQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AppendOnly("audit events are never changed")

    def delete(self):
        raise AppendOnly("audit events are deleted only by `manage.py prune_audit`")

    def _prune(self) -> int:
        # The one way out of the table: old events, past the retention period.
        return models.QuerySet.delete(self)[0]


class AuditEvent(models.Model):
    """One thing a staff member did or was refused. Never holds a secret, token or body."""

    class Outcome(models.TextChoices):
        OK = "ok", _("OK")
        FAILED = "failed", _("Failed")
        DENIED = "denied", _("Denied")

    class Action(models.TextChoices):
        # Reads (listing keys, a key's detail) are not recorded: the trail is about changes,
        # sign-ins and refusals, and a row per page view would bury them.
        SIGNIN = "signin", _("Staff sign-in")
        SIGNOUT = "signout", _("Staff sign-out")
        APPSERVICES_SIGNIN = "appservices-signin", _("App Services sign-in")
        APPSERVICES_SIGNOUT = "appservices-signout", _("App Services sign-out")
        CREATE = "create", _("Create key")
        ENABLE = "enable", _("Enable key")
        DISABLE = "disable", _("Disable key")
        DELETE = "delete", _("Delete key")
        AUDIT_EXPORT = "audit-export", _("Audit export")
        DENIED = "denied", _("Refused (role)")
        THROTTLED = "throttled", _("Sign-ins throttled")
        ACT_FOR_START = "act-for-start", _("Act for a customer: start")
        ACT_FOR_END = "act-for-end", _("Act for a customer: end")
        NOTE = "note", _("Key note changed")
        REVIEWED = "reviewed", _("Key reviewed")
        ROTATE = "rotate", _("Rotate key")
        LOCK_DOWN = "lock-down", _("Lock down account")
        LOCK_DOWN_UNDO = "lock-down-undo", _("Undo lock-down")
        BULK = "bulk", _("Bulk action")
        DELETE_USER = "delete-user", _("Delete empty App Services user")

    at = models.DateTimeField(default=timezone.now, db_index=True)
    action = models.CharField(max_length=32, db_index=True, choices=Action.choices)
    outcome = models.CharField(max_length=8, choices=Outcome.choices)
    status = models.PositiveSmallIntegerField(null=True, blank=True)  # upstream HTTP status
    staff_issuer = models.CharField(max_length=255, blank=True)
    staff_subject = models.CharField(max_length=255, blank=True, db_index=True)
    staff_name = models.CharField(max_length=200, blank=True)
    appservices_user_id = models.CharField(max_length=64, blank=True)
    # The App Services app id the row is about; while acting for a customer, who and why.
    app_id = models.CharField(max_length=64, blank=True, db_index=True)
    acting_for = models.CharField(max_length=255, blank=True, db_index=True)
    ticket = models.CharField(max_length=255, blank=True, db_index=True)
    # While acting for a customer: when the time box ends (or ended), as the start set it.
    acting_until = models.DateTimeField(null=True, blank=True)
    key_id = models.CharField(max_length=24, blank=True, db_index=True)
    key_name = models.CharField(max_length=64, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    client_address = models.GenericIPAddressField(null=True, blank=True)
    detail = models.CharField(max_length=200, blank=True)
    # One id shared by every row of one multi-key action: a lock-down (its incident id), its
    # undo, a bulk action. Undo finds exactly the keys a lock-down disabled through it.
    batch_id = models.CharField(max_length=36, blank=True, db_index=True)
    # What a note edit or a review changed: {"field": [old, new]}; never a secret (notes refuse
    # anything that looks like one), never a token.
    changes = models.JSONField(null=True, blank=True)

    objects = AuditQuerySet.as_manager()

    class Meta:
        ordering = ("-at", "-id")
        indexes = (
            # What a key's row asks on every answer (who made it, and when): the rows of one key
            # of one user of one app. Without it the database walks every row of the app or of
            # the action, and a key action's cost grows with the trail.
            models.Index(
                fields=("app_id", "appservices_user_id", "key_id"), name="auditevent_app_user_key"
            ),
        )

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.action} {self.outcome}"

    def save(self, *args, **kwargs):
        if not self._state.adding:
            raise AppendOnly("audit events are never changed")
        kwargs.pop("force_update", None)
        kwargs["force_insert"] = True
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnly("audit events are deleted only by `manage.py prune_audit`")

    @classmethod
    def prune(cls, before) -> int:
        """Delete the events older than `before`; the only deleter (`manage.py prune_audit`)."""
        return cls.objects.filter(at__lt=before)._prune()


class SignInThrottle(models.Model):
    """Recent sign-in attempts of one kind from one source: a staff member, an address, a target.

    `key` is a keyed HMAC of what is counted (keyadmin/throttle.py), never the email, API key
    or address itself. A row means nothing after `expires_at` and is deleted then.
    """

    scope = models.CharField(max_length=24)
    key = models.CharField(max_length=64)
    attempts = models.PositiveIntegerField(default=0)  # counted in the window
    window_start = models.DateTimeField(default=timezone.now)
    blocked_until = models.DateTimeField(null=True, blank=True)
    blocks = models.PositiveSmallIntegerField(default=0)  # blocks in a row: the backoff
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = (
            models.UniqueConstraint(fields=("scope", "key"), name="signinthrottle_scope_key"),
        )

    def __str__(self) -> str:
        return f"{self.scope} {self.attempts} attempts, blocked until {self.blocked_until}"


class KeyNote(models.Model):
    """What keyadmin knows about one key that App Services does not keep: why it exists.

    Keyed by (app, App Services user, key id): a key id alone is unique, but the note must never be
    shown to a session of another user or app. Who made the key is not here: provenance is read
    from the audit trail, never kept twice. Editable, so not part of the append-only trail; every
    change to it is an audit row with the old and new values.
    """

    app_id = models.CharField(max_length=64)
    appservices_user_id = models.CharField(max_length=64)
    key_id = models.CharField(max_length=24)
    purpose = models.CharField(max_length=200, blank=True)
    ticket = models.CharField(max_length=255, blank=True)
    owner = models.CharField(max_length=200, blank=True)  # a person or team to ask
    review_by = models.DateField(null=True, blank=True)
    # Rotation: the key that replaces this one, and the one this key replaced.
    superseded_by = models.CharField(max_length=24, blank=True)
    supersedes = models.CharField(max_length=24, blank=True)
    # The key was not in the user's list the last time keyadmin listed it (deleted elsewhere):
    # shown as such, and pruned by `manage.py prune_audit` after the retention period.
    missing_since = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = (
            models.UniqueConstraint(
                fields=("app_id", "appservices_user_id", "key_id"), name="keynote_app_user_key"
            ),
        )

    def __str__(self) -> str:
        return f"{self.key_id} {self.purpose}"


class UndoClaim(models.Model):
    """The one undo of a lock-down running now: the row is the claim, its key the lock-down's.

    An undo inserts this row, in a transaction of its own and before any App Services request;
    the primary key lets one insert win however many workers or instances try at once (SQLite
    serialises writers, PostgreSQL makes the second insert wait for the first and fail). The
    winner deletes it when it is done; that the undo happened is the trail's to say, not this
    table's. `expires_at` frees the lock-down from an undo whose process died before it could.
    """

    lockdown_batch_id = models.CharField(max_length=36, primary_key=True)
    undo_batch_id = models.CharField(max_length=36)  # the undo holding it: its release deletes it
    staff_name = models.CharField(max_length=200, blank=True)  # who, for "being undone by"
    claimed_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"undo of {self.lockdown_batch_id} by {self.staff_name} until {self.expires_at}"
