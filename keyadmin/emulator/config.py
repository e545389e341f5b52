"""What one run of the local App Services server serves, and how."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

DEFAULT_ACCESS_TTL = 30 * 60  # App Services' access tokens last 30 minutes
DEFAULT_REFRESH_TTL = 60 * 24 * 60 * 60  # and refresh tokens 60 days by default


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
    demo_user: tuple[str, str] | None = None
    verbose: bool = False
