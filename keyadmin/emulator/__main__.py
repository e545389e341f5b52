"""`python -m keyadmin.emulator`: run the local App Services server, with no Django settings.

The server is a standalone stdlib HTTP server: it needs no keyadmin secret and reads no
`KEYADMIN_*` variable, so tests, the bench and `make run` start it the same way.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from keyadmin.emulator.config import (
    DEFAULT_ACCESS_TTL,
    DEFAULT_REFRESH_TTL,
    EmulatorConfig,
    MetadataField,
    RemoteBindRefused,
)
from keyadmin.emulator.server import serve

DEFAULT_DB = Path("var") / "appservices.sqlite3"


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


def parse_metadata(value: str) -> tuple[MetadataField, ...]:
    """CLAIM=FIELD[:required],...: e.g. `name=name,email=email:required,name.first=first_name`."""
    fields = []
    for item in filter(None, (part.strip() for part in value.split(","))):
        claim, sep, field_name = item.partition("=")
        field_name, _, flag = field_name.partition(":")
        if not sep or not claim.strip() or not field_name.strip() or flag not in ("", "required"):
            raise argparse.ArgumentTypeError(
                f"expected CLAIM=FIELD or CLAIM=FIELD:required, got {item!r}"
            )
        fields.append(MetadataField(claim.strip(), field_name.strip(), flag == "required"))
    names = [field.field_name for field in fields]
    if len(set(names)) != len(names):
        raise argparse.ArgumentTypeError("each profile field may be named only once")
    return tuple(fields)


def positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return number


def non_negative_int(value: str) -> int:
    number = int(value)
    if number < 0:
        raise argparse.ArgumentTypeError("must be 0 or more")
    return number


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m keyadmin.emulator",
        description="Run the local App Services server (client API, user API keys and test "
        "controls under /_emulator/).",
    )
    parser.add_argument(
        "--addr", type=parse_addr, default="127.0.0.1:9090", help="HOST:PORT (port 0: any)"
    )
    parser.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow a non-loopback --addr (the /_emulator/ controls still answer only loopback)",
    )
    parser.add_argument("--app-id", required=True, help="the only app id it answers for")
    parser.add_argument(
        "--db",
        type=Path,
        default=DEFAULT_DB,
        help="sqlite file holding users, sessions and keys (default: %(default)s)",
    )
    parser.add_argument(
        "--latency-ms", type=non_negative_int, default=0, help="added to every answer"
    )
    parser.add_argument("--access-ttl", type=positive_int, default=DEFAULT_ACCESS_TTL, help="s")
    parser.add_argument("--refresh-ttl", type=positive_int, default=DEFAULT_REFRESH_TTL, help="s")
    parser.add_argument("--custom-token-secret", help="HS256 secret of the custom-token JWTs")
    parser.add_argument("--custom-token-jwks-url", help="JWKS URL for RS256 custom tokens")
    parser.add_argument("--custom-token-audience", help="expected `aud` (default: app id)")
    parser.add_argument(
        "--custom-token-metadata",
        type=parse_metadata,
        default=(),
        metavar="CLAIM=FIELD[:required],...",
        help="claims copied into the profile's data, e.g. name=name,email=email",
    )
    parser.add_argument("--demo-user", type=parse_demo_user, metavar="EMAIL:PASSWORD")
    parser.add_argument("--verbose", action="store_true", help="log one line per request")
    return parser


def config_from(args: argparse.Namespace) -> EmulatorConfig:
    host, port = args.addr
    return EmulatorConfig(
        host=host,
        port=port,
        app_id=args.app_id,
        db_path=args.db,
        latency_ms=args.latency_ms,
        access_ttl=args.access_ttl,
        refresh_ttl=args.refresh_ttl,
        custom_token_secret=args.custom_token_secret,
        custom_token_jwks_url=args.custom_token_jwks_url,
        custom_token_audience=args.custom_token_audience,
        custom_token_metadata=args.custom_token_metadata,
        demo_user=args.demo_user,
        verbose=args.verbose,
        allow_remote=args.allow_remote,
    )


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    config = config_from(args)
    logging.basicConfig(level=logging.INFO if config.verbose else logging.WARNING)

    def announce(line: str) -> None:
        print(line, flush=True)

    try:
        serve(config, announce=announce)
    except RemoteBindRefused as exc:
        print(exc, file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"cannot serve on {config.host}:{config.port}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
