"""`make run`: the local App Services server and the dashboard, together, until Ctrl-C.

The demo app acts for customers: rundev writes var/apps.toml (unless KEYADMIN_APPS_FILE is set)
naming the local server's app with acting enabled and an HS256 signing key made once in var/,
starts the local server trusting that key, and seeds two customers with two keys each by signing
in as them once. The dashboard (runserver's child process) reads the file at start-up.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from keyadmin import appservices
from keyadmin.appsfile import AppConfig, load_apps
from keyadmin.emulator.process import EmulatorProcess
from keyadmin.sso.actfor import mint_act_for_token

DEMO_EMAIL = "demo@example.com"
# A demo user on a loopback-only local server: nothing to protect.
DEMO_PASSWORD = "keyadmin-demo"  # noqa: S105
DEMO_CUSTOMERS = ("cus_alice", "cus_bob")
DEMO_TICKET = "SUP-1"
SIGNING_KEY_FILE = "act-for-signing-key"
APPS_FILE = "apps.toml"


def demo_dir() -> Path:
    return settings.BASE_DIR / "var"


def signing_key(folder: Path) -> str:
    """The demo app's HS256 signing key, made once (mode 0600) and kept in var/."""
    path = folder / SIGNING_KEY_FILE
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_urlsafe(48) + "\n")
    return path.read_text().strip()


def custom_token_args(secret: str) -> list[str]:
    """The local server's arguments trusting `secret`, in one `--name=value` word: a url-safe
    secret starts with "-" one time in 64, and argparse reads a separate "-..." as an option."""
    return [f"--custom-token-secret={secret}"]


def write_apps_file(folder: Path) -> Path:
    """var/apps.toml: the demo app, acting for customers with the HS256 key beside it."""
    path = folder / APPS_FILE
    path.write_text(
        "# Written by `make run` (keyadmin/management/commands/rundev.py) on every start.\n"
        "[[apps]]\n"
        'key = "demo"\n'
        'name = "Demo app"\n'
        f'app_id = "{settings.APPSERVICES_APP_ID}"\n'
        f'base_url = "{settings.APPSERVICES_BASE_URL}"\n'
        'allowed_hosts = ["127.0.0.1", "localhost"]\n'
        'environment = "development"\n'
        "act_for_enabled = true\n"
        "customer_pattern = '^cus_[A-Za-z0-9]+$'\n"
        "ticket_pattern = '^SUP-\\d+$'\n"
        "max_act_for_minutes = 60\n"
        'jwt_algorithm = "HS256"\n'
        f'jwt_hs256_secret_file = "{SIGNING_KEY_FILE}"\n'
        "review_days = 90\n"
        "delete_new_users = true\n"
    )
    return path


def seed_customers(app: AppConfig) -> list[str]:
    """Sign in once as each demo customer (creating them) and give each two keys; idempotent."""
    seeded = []
    for customer in DEMO_CUSTOMERS:
        token = mint_act_for_token(app, customer, "rundev", "keyadmin-demo", DEMO_TICKET)
        tokens = appservices.AppServices(app).login("custom-token", {"token": token})
        user = appservices.UserSession(
            tokens.hostname, tokens.refresh_token, allowed_hosts=app.allowed_hosts
        )
        have = {key.name for key in user.list_api_keys()}
        for name in (f"{customer}-web", f"{customer}-ci"):
            if name not in have:
                user.create_api_key(name)  # the secret is not kept: a demo key
        user.logout()
        seeded.append(customer)
    return seeded


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
        extra: list[str] = []
        demo_app = None
        if not os.environ.get("KEYADMIN_APPS_FILE"):
            folder = demo_dir()
            extra = custom_token_args(signing_key(folder))
            apps_file = write_apps_file(folder)
            os.environ["KEYADMIN_APPS_FILE"] = str(apps_file)  # for runserver's child process
            demo_app = load_apps(
                str(apps_file), base_url="", app_id="", allowed_hosts=[], bridge_audience=""
            )[0]
        server = EmulatorProcess(
            settings.APPSERVICES_APP_ID,
            settings.BASE_DIR / "var" / "appservices.sqlite3",
            "--demo-user",
            f"{DEMO_EMAIL}:{DEMO_PASSWORD}",
            *extra,
            "--custom-token-metadata",
            "name=name",
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
                    "above.\n"
                )
            )
            if demo_app is not None:
                self._seed(demo_app)
            self.stdout.write("  Ctrl-C stops both servers.\n")
            call_command("runserver", addr)
        except KeyboardInterrupt:
            pass
        finally:
            server.stop()

    def _seed(self, app: AppConfig) -> None:
        try:
            customers = seed_customers(app)
        except appservices.AppServicesError as exc:
            self.stderr.write(f"  The demo customers could not be seeded: {exc.message}\n")
            return
        self.stdout.write(
            self.style.SUCCESS(
                f"  Act for a customer: {' or '.join(customers)} (two keys each), on the "
                f"connect page under 'Act for a customer', with a ticket such as {DEMO_TICKET}.\n"
                "  Then try Rotate on a key, its note, 'Disable all keys…' and 'Undo this "
                "lock-down'.\n"
            )
        )
