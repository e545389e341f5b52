"""`manage.py emulator`: `python -m keyadmin.emulator` with the project's `var/` as default home."""

from __future__ import annotations

from typing import ClassVar

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from keyadmin.emulator import __main__ as emulator


class Command(BaseCommand):
    help = "Run the local App Services server (client API, user API keys and test controls)."
    requires_system_checks: ClassVar[list[str]] = []  # it serves no Django views: start fast

    def run_from_argv(self, argv: list[str]) -> None:
        args = argv[2:]
        if not any(arg == "--db" or arg.startswith("--db=") for arg in args):
            args = [*args, "--db", str(settings.BASE_DIR / "var" / "appservices.sqlite3")]
        code = emulator.main(args)
        if code:
            raise CommandError("the local App Services server could not start", returncode=code)
