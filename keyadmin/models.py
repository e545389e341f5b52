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
    key_id = models.CharField(max_length=24, blank=True, db_index=True)
    key_name = models.CharField(max_length=64, blank=True)
    request_id = models.CharField(max_length=64, blank=True)
    client_address = models.GenericIPAddressField(null=True, blank=True)
    detail = models.CharField(max_length=200, blank=True)

    objects = AuditQuerySet.as_manager()

    class Meta:
        ordering = ("-at", "-id")

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
