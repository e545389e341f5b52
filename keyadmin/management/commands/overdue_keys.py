"""List the keys of one app whose review date has passed, as CSV or JSON, for a scheduled report.

Read from keyadmin's notes alone: no App Services request. A note whose key was missing from its
user's list the last time keyadmin listed it is left out (the key is gone).
"""

from __future__ import annotations

import csv
import json

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from keyadmin.appservices.apps import all_apps, app_for_id
from keyadmin.appservices.apps import app as app_by_key
from keyadmin.keys.notes import overdue

COLUMNS = (
    "app_id",
    "appservices_user_id",
    "key_id",
    "purpose",
    "ticket",
    "owner",
    "review_by",
    "days_overdue",
)


class Command(BaseCommand):
    help = "List the keys of an app whose review date has passed (CSV or JSON, to stdout)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--app", required=True, help="the app's key or App Services app id (apps file)"
        )
        parser.add_argument("--format", choices=("csv", "json"), default="csv")

    def handle(self, *args, app: str, format: str, **options):
        chosen = app_by_key(app) or app_for_id(app)
        if chosen is None:
            known = ", ".join(candidate.key for candidate in all_apps())
            raise CommandError(f"no configured app has the key or app id {app!r} ({known})")
        today = timezone.localdate()
        rows = [
            {
                "app_id": note.app_id,
                "appservices_user_id": note.appservices_user_id,
                "key_id": note.key_id,
                "purpose": note.purpose,
                "ticket": note.ticket,
                "owner": note.owner,
                "review_by": note.review_by.isoformat(),
                "days_overdue": (today - note.review_by).days,
            }
            for note in overdue(chosen.app_id, today)
        ]
        if format == "json":
            self.stdout.write(json.dumps(rows, indent=2))
            return
        writer = csv.DictWriter(self.stdout, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
