"""`manage.py emulator`: run the local App Services server (see keyadmin/emulator/)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import ClassVar

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from keyadmin.emulator.config import DEFAULT_ACCESS_TTL, DEFAULT_REFRESH_TTL, EmulatorConfig
from keyadmin.emulator.server import serve


def parse_addr(value: str) -> tuple[str, int]:
    """HOST:PORT, or [IPV6]:PORT."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise argparse.ArgumentTypeError("expected HOST:PORT, e.g. 127.0.0.1:9090")
    return host.removeprefix("[").removesuffix("]"), int(port)


def parse_demo_user(value: str) -> tuple[str, str]:
    email, sep, password = value.partition(":")
    if not sep or not email or not password:
        raise argparse.ArgumentTypeError("expected EMAIL:PASSWORD")
    return email, password


def positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return number


class Command(BaseCommand):
    help = "Run the local App Services server (client API, user API keys and test controls)."
    requires_system_checks: ClassVar[list[str]] = []  # it serves no Django views: start fast

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--addr", type=parse_addr, default="127.0.0.1:9090", help="HOST:PORT (port 0: any)"
        )
        parser.add_argument("--app-id", required=True, help="the only app id it answers for")
        parser.add_argument(
            "--db",
            type=Path,
            default=settings.BASE_DIR / "var" / "appservices.sqlite3",
            help="sqlite file holding users, sessions and keys (default: %(default)s)",
        )
        parser.add_argument("--latency-ms", type=int, default=0, help="added to every answer")
        parser.add_argument(
            "--access-ttl", type=positive_int, default=DEFAULT_ACCESS_TTL, help="seconds"
        )
        parser.add_argument(
            "--refresh-ttl", type=positive_int, default=DEFAULT_REFRESH_TTL, help="seconds"
        )
        parser.add_argument("--custom-token-secret", help="HS256 secret of the custom-token JWTs")
        parser.add_argument("--custom-token-jwks-url", help="JWKS URL for RS256 custom tokens")
        parser.add_argument("--custom-token-audience", help="expected `aud` (default: app id)")
        parser.add_argument("--demo-user", type=parse_demo_user, metavar="EMAIL:PASSWORD")
        parser.add_argument("--verbose", action="store_true", help="log one line per request")

    def handle(self, *args: object, **options: object) -> None:
        host, port = options["addr"]  # type: ignore[misc]
        if options["latency_ms"] < 0:  # type: ignore[operator]
            raise CommandError("--latency-ms must be 0 or more")
        config = EmulatorConfig(
            host=host,
            port=port,
            app_id=options["app_id"],  # type: ignore[arg-type]
            db_path=options["db"],  # type: ignore[arg-type]
            latency_ms=options["latency_ms"],  # type: ignore[arg-type]
            access_ttl=options["access_ttl"],  # type: ignore[arg-type]
            refresh_ttl=options["refresh_ttl"],  # type: ignore[arg-type]
            custom_token_secret=options["custom_token_secret"],  # type: ignore[arg-type]
            custom_token_jwks_url=options["custom_token_jwks_url"],  # type: ignore[arg-type]
            custom_token_audience=options["custom_token_audience"],  # type: ignore[arg-type]
            demo_user=options["demo_user"],  # type: ignore[arg-type]
            verbose=bool(options["verbose"]),
        )
        if config.verbose:
            logging.getLogger("keyadmin.emulator").setLevel(logging.INFO)
        try:
            serve(config, announce=self._announce)
        except OSError as exc:
            raise CommandError(f"cannot serve on {host}:{port}: {exc}") from exc

    def _announce(self, line: str) -> None:
        self.stdout.write(line)
        self.stdout.flush()
