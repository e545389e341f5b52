"""Where keyadmin may send credentials: one set of rules for the App Services client, the
start-up checks in settings and the SSO configuration. No Django imports, so settings can use it."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from urllib.parse import urlsplit


def is_loopback(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


def host_allowed(host: str, patterns: Iterable[str]) -> bool:
    """`host` equals a pattern, or is a subdomain of a `*.` pattern (never the bare domain)."""
    host = host.lower()
    for pattern in patterns:
        pattern = pattern.lower()
        if pattern.startswith("*."):
            if host.endswith(pattern[1:]) and host != pattern[2:]:
                return True
        elif host == pattern:
            return True
    return False


def origin_problem(url: str, allowed_hosts: Iterable[str]) -> str | None:
    """Why tokens must not go to `url`, or None when it is a clean, allowed origin."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        return "is not a URL"
    host = (parts.hostname or "").lower()
    if parts.username or parts.password:
        return "must not hold a user name or password"
    # Plain http only to this machine (the local App Services server); anywhere else needs TLS.
    if not host or not (parts.scheme == "https" or (parts.scheme == "http" and is_loopback(host))):
        return "must be an https URL (plain http only to this machine, e.g. the local server)"
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        return "must be scheme://host[:port] only, without a path or query"
    if not host_allowed(host, allowed_hosts):
        return "names a host that APPSERVICES_ALLOWED_HOSTS does not allow"
    return None
