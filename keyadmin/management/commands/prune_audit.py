"""Delete audit events older than the retention period: the only way events leave the trail.

Notes whose key disappeared outside keyadmin (`KeyNote.missing_since`) go after the same period.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from keyadmin.models import AuditEvent, KeyNote


class Command(BaseCommand):
    help = (
        "Delete audit events older than KEYADMIN_AUDIT_RETENTION_DAYS (default 365) days, and the "
        "notes of keys missing from their user's list for as long."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--days",
            type=int,
            default=None,
            help="keep this many days instead of KEYADMIN_AUDIT_RETENTION_DAYS",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="count what would go, delete nothing"
        )

    def handle(self, *args, days: int | None, dry_run: bool, **options):
        days = settings.KEYADMIN_AUDIT_RETENTION_DAYS if days is None else days
        if days < 1:
            raise CommandError("--days must be at least 1")
        before = timezone.now() - timedelta(days=days)
        gone_notes = KeyNote.objects.filter(missing_since__lt=before)
        if dry_run:
            count = AuditEvent.objects.filter(at__lt=before).count()
            self.stdout.write(f"{count} audit events are older than {days} days (dry run)")
            self.stdout.write(
                f"{gone_notes.count()} notes of missing keys are older than {days} days (dry run)"
            )
            return
        count = AuditEvent.prune(before)
        self.stdout.write(f"deleted {count} audit events older than {days} days")
        notes, _ = gone_notes.delete()
        self.stdout.write(f"deleted {notes} notes of keys missing for more than {days} days")
