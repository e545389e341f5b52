"""`manage.py emulator_adduser`: add a confirmed email/password user to the local server."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import ClassVar

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from keyadmin.emulator.store import EmailTaken, Store


class Command(BaseCommand):
    help = "Add a confirmed email/password user to the local App Services server's database."
    requires_system_checks: ClassVar[list[str]] = []

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("email")
        parser.add_argument("password")
        parser.add_argument(
            "--db", type=Path, default=settings.BASE_DIR / "var" / "appservices.sqlite3"
        )

    def handle(self, *args: object, email: str, password: str, db: Path, **options: object):
        if not 6 <= len(password) <= 128:
            raise CommandError("password must be between 6 and 128 characters")
        store = Store(db)
        try:
            user_id = store.create_email_user(email, password)
        except EmailTaken:
            raise CommandError(f"a user with email {email} already exists") from None
        finally:
            store.close()
        self.stdout.write(user_id)
