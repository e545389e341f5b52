"""Where keyadmin may send credentials: one set of rules for the App Services client, the
start-up checks in settings and the SSO configuration. No Django imports, so settings can use it."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from django.http import HttpRequest


def is_loopback(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


_DEFAULT_PORTS = {"http": 80, "https": 443}


def host_allowed(host: str, patterns: Iterable[str]) -> bool:
    """`host` equals a pattern, or is a subdomain of a `*.` pattern (never the bare domain).

    Patterns holding "://" are whole origins, matched by `origin_listed` only.
    """
    host = host.lower()
    for pattern in patterns:
        pattern = pattern.lower()
        if "://" in pattern:
            continue
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
    if not (host_allowed(host, allowed_hosts) or origin_listed(url, allowed_hosts)):
        return "names a host that APPSERVICES_ALLOWED_HOSTS does not allow"
    return None


def _scheme_host_port(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or _DEFAULT_PORTS.get(scheme)


def origin_listed(url: str, allowed: Iterable[str]) -> bool:
    """`url` is, scheme, host and port, an origin that `allowed` names in full."""
    try:
        wanted = _scheme_host_port(url)
        return any(
            "://" in entry and _scheme_host_port(entry.rstrip("/")) == wanted for entry in allowed
        )
    except ValueError:
        return False


def location_problem(url: str, base_url: str, allowed: Iterable[str]) -> str | None:
    """Why tokens must not go to `url`, an origin App Services' location answer named.

    Besides `origin_problem`: the scheme and port must be the base URL's, so that an answer
    can move keyadmin to another allowed host but never down to plain http or to another
    service on an allowed host; APPSERVICES_ALLOWED_HOSTS may name an origin in full to allow
    it all the same.
    """
    allowed = list(allowed)
    problem = origin_problem(url, allowed)
    if problem:
        return problem
    if origin_listed(url, allowed):
        return None
    scheme, _host, port = _scheme_host_port(url)
    base_scheme, _base_host, base_port = _scheme_host_port(base_url)
    if (scheme, port) != (base_scheme, base_port):
        return "uses another scheme or port than APPSERVICES_BASE_URL"
    return None


def allowlist_problem(allowed: Iterable[str]) -> str | None:
    """Why an APPSERVICES_ALLOWED_HOSTS entry is not a host, a `*.` pattern or a clean origin."""
    for entry in allowed:
        if "://" in entry and origin_problem(entry.rstrip("/"), [entry.rstrip("/")]):
            return f"{entry!r} is not an origin such as https://host:port"
    return None


_FORWARDED = ("HTTP_X_FORWARDED_FOR", "HTTP_FORWARDED", "HTTP_X_REAL_IP")


def from_this_machine(request: HttpRequest) -> bool:
    """A request made on this machine, not relayed: the peer is loopback and no proxy header.

    A proxy on the same host is a loopback peer too, so a forwarded request is somebody else's
    whatever address its header names; and with KEYADMIN_TRUSTED_PROXY_COUNT wrongly 0 the
    client address would be the proxy's own, so that is not trusted here either.
    """
    if any(header in request.META for header in _FORWARDED):
        return False
    return is_loopback(request.META.get("REMOTE_ADDR"))
