"""`make run`: the local App Services server and the dashboard, together, until Ctrl-C."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from urllib.parse import urlsplit

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

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
        server = subprocess.Popen(  # noqa: S603 - our own manage.py, fixed arguments
            [
                sys.executable,
                "manage.py",
                "emulator",
                "--addr",
                upstream.netloc,
                "--app-id",
                settings.APPSERVICES_APP_ID,
                "--db",
                str(settings.BASE_DIR / "var" / "appservices.sqlite3"),
                "--demo-user",
                f"{DEMO_EMAIL}:{DEMO_PASSWORD}",
            ],
            cwd=settings.BASE_DIR,
        )
        try:
            self._wait_for(settings.APPSERVICES_BASE_URL, server)
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
            server.terminate()
            server.wait(timeout=10)

    def _wait_for(self, base_url: str, server: subprocess.Popen) -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if server.poll() is not None:
                raise CommandError("the local App Services server did not start (see above)")
            try:
                urllib.request.urlopen(f"{base_url}/_emulator/stats", timeout=1)  # noqa: S310  # nosec B310 - loopback, checked above
                return
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.1)
        raise CommandError("the local App Services server did not answer within 20 s")
