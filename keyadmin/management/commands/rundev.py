"""`make run`: the local App Services server and the dashboard, together, until Ctrl-C."""

from __future__ import annotations

import os
from urllib.parse import urlsplit

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from keyadmin.emulator.process import EmulatorProcess

DEMO_EMAIL = "demo@example.com"
# A demo user on a loopback-only local server: nothing to protect.
DEMO_PASSWORD = "keyadmin-demo"  # noqa: S105


class Command(BaseCommand):
    help = "Start the local App Services server and the dashboard (development only)."

    def add_arguments(self, parser):
        parser.add_argument("--addr", default="127.0.0.1:8000", help="dashboard address")

    def handle(self, *args, addr: str, **options):
        if not settings.DEBUG:
            raise CommandError("rundev is for development: set KEYADMIN_DEBUG=true (make run does)")
        # runserver's autoreloader re-runs this command in a child process; only the parent
        # owns the local App Services server.
        if os.environ.get("RUN_MAIN") == "true":
            call_command("runserver", addr)
            return
        upstream = urlsplit(settings.APPSERVICES_BASE_URL)
        if upstream.hostname not in ("127.0.0.1", "localhost"):
            raise CommandError("APPSERVICES_BASE_URL must point at the local server for rundev")
        call_command("migrate", interactive=False, verbosity=0)
        server = EmulatorProcess(
            settings.APPSERVICES_APP_ID,
            settings.BASE_DIR / "var" / "appservices.sqlite3",
            "--demo-user",
            f"{DEMO_EMAIL}:{DEMO_PASSWORD}",
            port=upstream.port or 80,
        )
        try:
            try:
                server.start()
            except RuntimeError as exc:
                raise CommandError(str(exc)) from exc
            # Sessions that expired while the dashboard was down: their tokens are revoked on the
            # local server, which is up by now.
            call_command("end_expired_sessions", verbosity=0)
            self.stdout.write(
                self.style.SUCCESS(
                    f"\n  keyadmin:          http://{addr}/\n"
                    f"  App Services user: {DEMO_EMAIL}  password: {DEMO_PASSWORD}\n"
                    f"  App Services app:  {settings.APPSERVICES_APP_ID} "
                    f"(local server at {settings.APPSERVICES_BASE_URL})\n"
                    "  Sign in with any staff name (development sign-in), then with the user "
                    "above.\n  Ctrl-C stops both servers.\n"
                )
            )
            call_command("runserver", addr)
        except KeyboardInterrupt:
            pass
        finally:
            server.stop()
