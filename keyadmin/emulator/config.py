"""What one run of the local App Services server serves, and how."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

DEFAULT_ACCESS_TTL = 30 * 60  # App Services' access tokens last 30 minutes
DEFAULT_REFRESH_TTL = 60 * 24 * 60 * 60  # and refresh tokens 60 days by default


@dataclass(frozen=True)
class MetadataField:
    """One custom-token metadata field: the claim at `claim` (dotted path) becomes
    `data[field_name]` in the user's profile; a `required` claim missing refuses the login."""

    claim: str
    field_name: str
    required: bool = False


@dataclass(frozen=True)
class EmulatorConfig:
    host: str
    port: int
    app_id: str
    db_path: Path
    latency_ms: int = 0
    access_ttl: int = DEFAULT_ACCESS_TTL
    refresh_ttl: int = DEFAULT_REFRESH_TTL
    custom_token_secret: str | None = None
    custom_token_jwks_url: str | None = None
    custom_token_audience: str | None = None  # None: the app id, as App Services defaults it
    custom_token_metadata: tuple[MetadataField, ...] = ()
    demo_user: tuple[str, str] | None = None
    verbose: bool = False
    allow_remote: bool = False  # listen on a non-loopback address (the controls stay loopback)


class RemoteBindRefused(Exception):
    """The server was asked to listen beyond loopback without `allow_remote`."""


def is_loopback(host: str) -> bool:
    """True for `localhost` and loopback addresses (127.0.0.0/8, ::1, IPv4-mapped 127.x).

    A wildcard ("", 0.0.0.0, ::) or any other name is not: it may reach other machines.
    """
    if host == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    mapped = getattr(address, "ipv4_mapped", None)
    return address.is_loopback or bool(mapped and mapped.is_loopback)


def check_bind(config: EmulatorConfig) -> None:
    """Refuse a non-loopback address unless `allow_remote`: with test-grade password hashing
    and its signing key in a plain sqlite file, the server is for this machine."""
    if not config.allow_remote and not is_loopback(config.host):
        shown = config.host or "all interfaces"
        raise RemoteBindRefused(
            f"refusing to listen on {shown}: not a loopback address. The local App Services "
            "server is for this machine; pass --allow-remote to serve other hosts anyway."
        )
