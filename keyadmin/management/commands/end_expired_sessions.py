"""Revoke the App Services tokens that expired and idle staff sessions hold; drop the expired."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from keyadmin.sso.session import end_expired_sessions


class Command(BaseCommand):
    help = (
        "Revoke the App Services refresh tokens of expired and idle staff sessions, and delete "
        "the expired sessions. Run it on a schedule (every 15 minutes), on one instance."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--seconds",
            type=float,
            default=120.0,
            help="stop revoking after this long; the next run takes the rest (default 120)",
        )

    def handle(self, *args, seconds: float, **options):
        if seconds <= 0:
            raise CommandError("--seconds must be above zero")
        done = end_expired_sessions(seconds)
        if options["verbosity"] == 0:
            return
        self.stdout.write(
            f"revoked {done.revoked} App Services tokens; deleted {done.deleted} expired "
            f"sessions; disconnected {done.disconnected} idle sessions; "
            f"{done.left} not looked at (time budget; the next run takes them)"
        )
