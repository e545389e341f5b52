"""The App Services apps keyadmin serves, read once at start-up (docs/apps.md).

`load_apps` is called by settings.py and returns the apps as `AppConfig`s: from the file
KEYADMIN_APPS_FILE names (TOML or JSON, by its extension), or, without one, the single app the
APPSERVICES_* variables describe, exactly as before several apps existed. Anything the file gets
wrong stops start-up with one `ImproperlyConfigured` naming the file, the app and the field.

No Django imports beyond the exception, and no gettext: settings.py imports this module before
Django is configured (which is also why it is not inside keyadmin/appservices, whose package
imports need configured settings). `keyadmin.appservices.apps` is the accessor the rest uses.
"""

from __future__ import annotations

import hmac
import json
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

from keyadmin.origins import is_loopback, origin_problem

ENVIRONMENTS = ("production", "staging", "development")
JWT_ALGORITHMS = ("RS256", "HS256")
APP_ROLES = ("viewer", "operator", "auditor", "act_for")
DEFAULT_BASE_URL = "https://services.cloud.mongodb.com"
CLOUD_HOSTS = "*.services.cloud.mongodb.com"
SINGLE_APP_KEY = "default"
MIN_HS256_SECRET_BYTES = 32
MAX_HS256_SECRET_BYTES = 512  # App Services' bounds for a manual signing key
DEFAULT_ACT_FOR_MINUTES = 15
DEFAULT_MAX_ACT_FOR_MINUTES = 60
LONGEST_ACT_FOR_MINUTES = 8 * 60  # one shift: no setting may allow more
LONGEST_REVIEW_DAYS = 5 * 366  # a review period past a few years is no review at all
_KEY = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")
_APP_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
_MAX_NAME = 100


class SigningSecret:
    """An HS256 signing key that never shows itself: repr, str and copies say `<hidden>`."""

    __slots__ = ("_value",)

    def __init__(self, value: bytes) -> None:
        self._value = value

    def reveal(self) -> bytes:
        return self._value

    def __repr__(self) -> str:
        return "SigningSecret(<hidden>)"

    __str__ = __repr__

    def __reduce__(self):
        raise TypeError("a signing secret is never pickled")

    def __copy__(self) -> SigningSecret:
        return self

    def __deepcopy__(self, memo: dict) -> SigningSecret:
        return self


@dataclass(frozen=True)
class AppConfig:
    """One App Services app staff may work on.

    `*_groups`: None lets the global KEYADMIN_ROLE_GROUPS_* decide that role on this app; a tuple
    additionally requires membership of one of its groups (an empty tuple: nobody holds the role
    here). They only ever narrow the global roles (keyadmin.sso.roles.roles_on_app).

    `jwt_audience` defaults to `app_id`; `jwt_hs256_secret` is set exactly when `jwt_algorithm`
    is HS256 (the bytes of `jwt_hs256_secret_file`, read at start-up), and never shows in repr.
    """

    key: str
    name: str
    app_id: str
    base_url: str
    allowed_hosts: tuple[str, ...]
    environment: str
    viewer_groups: tuple[str, ...] | None = None
    operator_groups: tuple[str, ...] | None = None
    auditor_groups: tuple[str, ...] | None = None
    act_for_groups: tuple[str, ...] | None = None
    act_for_enabled: bool = False
    customer_label: str = ""  # empty: the page's own, translated "Customer id"
    customer_pattern: str | None = None
    ticket_pattern: str | None = None
    max_act_for_minutes: int = DEFAULT_MAX_ACT_FOR_MINUTES
    default_act_for_minutes: int = DEFAULT_ACT_FOR_MINUTES
    # Whether staff acting for a customer may delete the empty user their sign-in just created
    # (a mistyped id); the file's default is off for production apps, on for the others.
    delete_new_users: bool = False
    jwt_audience: str = ""
    jwt_algorithm: str = "RS256"
    jwt_hs256_secret_file: str = ""
    jwt_hs256_secret: SigningSecret | None = field(default=None, repr=False, compare=False)
    # Days from a key's creation (or its last review) to its next review; None: no default.
    review_days: int | None = None

    def __post_init__(self) -> None:
        if not self.jwt_audience:
            object.__setattr__(self, "jwt_audience", self.app_id)

    @property
    def is_production(self) -> bool:
        return self.environment == "production"

    def role_groups(self, role: str) -> tuple[str, ...] | None:
        """The groups this app requires for `role`, or None when only the global ones count."""
        if role not in APP_ROLES:
            raise ValueError(f"unknown role {role!r}")
        return getattr(self, f"{role}_groups")


_FIELDS = {
    "key",
    "name",
    "app_id",
    "base_url",
    "allowed_hosts",
    "environment",
    *(f"{role}_groups" for role in APP_ROLES),
    "act_for_enabled",
    "customer_label",
    "customer_pattern",
    "ticket_pattern",
    "max_act_for_minutes",
    "default_act_for_minutes",
    "delete_new_users",
    "jwt_audience",
    "jwt_algorithm",
    "jwt_hs256_secret_file",
    "review_days",
}
_REQUIRED = ("key", "name", "app_id", "environment")


def default_allowed_hosts(base_url: str) -> list[str]:
    """Today's APPSERVICES_ALLOWED_HOSTS default: the base URL's host and the cloud's hosts."""
    return [urlsplit(base_url).hostname or "", CLOUD_HOSTS]


def single_app(
    *, base_url: str, app_id: str, allowed_hosts: list[str], bridge_audience: str = ""
) -> AppConfig:
    """The one app of the APPSERVICES_* variables (already checked by settings.py).

    Its environment is `development` when the base URL is this machine (the local server) and
    `production` otherwise: a real App Services app is treated as production unless a file says
    otherwise. Acting for customers needs a file (it is off here).
    """
    local = is_loopback(urlsplit(base_url).hostname)
    return AppConfig(
        key=SINGLE_APP_KEY,
        name=app_id or "App Services",
        app_id=app_id,
        base_url=base_url,
        allowed_hosts=tuple(allowed_hosts),
        environment="development" if local else "production",
        jwt_audience=bridge_audience or app_id,
    )


def load_apps(
    apps_file: str | None,
    *,
    base_url: str,
    app_id: str,
    allowed_hosts: list[str],
    bridge_audience: str = "",
) -> tuple[AppConfig, ...]:
    """The configured apps, the default one first; raises ImproperlyConfigured when unusable."""
    if not apps_file:
        return (
            single_app(
                base_url=base_url,
                app_id=app_id,
                allowed_hosts=allowed_hosts,
                bridge_audience=bridge_audience,
            ),
        )
    path = Path(apps_file)
    where = f"KEYADMIN_APPS_FILE {apps_file}"
    document = _read(path, where)
    unknown = sorted(set(document) - {"apps"})
    if unknown:
        raise ImproperlyConfigured(
            f"{where}: unknown top-level field(s) {', '.join(unknown)}; the file holds `apps`, "
            "a list of apps ([[apps]] tables in TOML)"
        )
    entries = document.get("apps")
    if not isinstance(entries, list) or not entries:
        raise ImproperlyConfigured(f"{where}: `apps` must list at least one app")
    problems: list[str] = []
    apps = []
    for index, entry in enumerate(entries):
        label = f"apps[{index}]"
        if isinstance(entry, dict) and isinstance(entry.get("key"), str):
            label += f" ({entry['key']})"
        app = _app(entry, label, path.parent, problems)
        if app is not None:
            apps.append(app)
    for name in ("key", "app_id"):
        seen: set[str] = set()
        for app in apps:
            value = getattr(app, name)
            if value in seen:
                problems.append(f"{name} {value!r} is used by more than one app")
            seen.add(value)
    problems.extend(_shared_signing(apps))
    if problems:
        raise ImproperlyConfigured(f"{where}: " + "; ".join(problems))
    return tuple(apps)


def _shared_signing(apps: list[AppConfig]) -> list[str]:
    """Pairs of apps whose providers would take each other's tokens: every RS256 app trusts
    keyadmin's one key, so only its audience keeps a token minted for one app (and sent to
    that app's upstream) from signing in to another as the same customer."""
    problems = []
    for index, first in enumerate(apps):
        for second in apps[index + 1 :]:
            a, b = sorted((first.key, second.key))
            if first.jwt_algorithm == second.jwt_algorithm == "RS256":
                if first.jwt_audience == second.jwt_audience:
                    problems.append(
                        f"apps {a} and {b} sign with the same key (keyadmin's RS256 key) for "
                        f"the same jwt_audience {first.jwt_audience!r}: a token for one would "
                        "sign in to the other; give each app its own jwt_audience"
                    )
            elif (
                first.jwt_hs256_secret is not None
                and second.jwt_hs256_secret is not None
                and hmac.compare_digest(
                    first.jwt_hs256_secret.reveal(), second.jwt_hs256_secret.reveal()
                )
            ):
                problems.append(
                    f"apps {a} and {b} sign with the same key (one HS256 key): a token for one "
                    "could sign in to the other; give each app its own HS256 key"
                )
    return problems


def _read(path: Path, where: str) -> dict:
    suffix = path.suffix.lower()
    if suffix not in (".toml", ".json"):
        raise ImproperlyConfigured(f"{where}: the file name must end in .toml or .json")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ImproperlyConfigured(
            f"{where} cannot be read: {exc.strerror or type(exc).__name__}"
        ) from None
    try:
        parse = tomllib.loads if suffix == ".toml" else json.loads
        document = parse(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError, json.JSONDecodeError) as exc:
        raise ImproperlyConfigured(f"{where} is not valid {suffix[1:].upper()}: {exc}") from None
    if not isinstance(document, dict):
        raise ImproperlyConfigured(f"{where}: the file must hold an object with `apps`")
    return document


def _text(entry: dict, name: str, label: str, problems: list[str], default: str = "") -> str:
    value = entry.get(name, default)
    if not isinstance(value, str):
        problems.append(f"{label}.{name} must be a string")
        return default
    return value.strip()


def _strings(entry: dict, name: str, label: str, problems: list[str]) -> tuple[str, ...] | None:
    if name not in entry:
        return None
    value = entry[name]
    if not isinstance(value, list) or not all(
        isinstance(item, str) and item.strip() for item in value
    ):
        problems.append(f"{label}.{name} must be a list of non-empty strings")
        return None
    return tuple(item.strip() for item in value)


def _flag(entry: dict, name: str, label: str, problems: list[str], default: bool = False) -> bool:
    value = entry.get(name, default)
    if not isinstance(value, bool):
        problems.append(f"{label}.{name} must be true or false")
        return False
    return value


def _minutes(entry: dict, name: str, label: str, problems: list[str], default: int) -> int:
    value = entry.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int):
        problems.append(f"{label}.{name} must be a whole number of minutes")
        return default
    if not 1 <= value <= LONGEST_ACT_FOR_MINUTES:
        problems.append(f"{label}.{name} must be 1 to {LONGEST_ACT_FOR_MINUTES}, not {value}")
        return default
    return value


def _review_days(entry: dict, label: str, problems: list[str]) -> int | None:
    value = entry.get("review_days")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        problems.append(f"{label}.review_days must be a whole number of days")
        return None
    if not 1 <= value <= LONGEST_REVIEW_DAYS:
        problems.append(f"{label}.review_days must be 1 to {LONGEST_REVIEW_DAYS}, not {value}")
        return None
    return value


def _pattern(entry: dict, name: str, label: str, problems: list[str]) -> str | None:
    if name not in entry:
        return None
    value = entry[name]
    if not isinstance(value, str) or not value:
        problems.append(f"{label}.{name} must be a non-empty regular expression")
        return None
    try:
        re.compile(value, re.ASCII)  # as keyadmin.sso.actfor matches it
    except re.error as exc:
        problems.append(f"{label}.{name} is not a valid regular expression ({exc})")
        return None
    return value


def _secret(
    entry: dict, label: str, folder: Path, problems: list[str]
) -> tuple[str, SigningSecret | None]:
    name = entry.get("jwt_hs256_secret_file")
    if not isinstance(name, str) or not name.strip():
        problems.append(
            f"{label}.jwt_hs256_secret_file is required with jwt_algorithm HS256: a file holding "
            f"the provider's signing key ({MIN_HS256_SECRET_BYTES} to "
            f"{MAX_HS256_SECRET_BYTES} bytes)"
        )
        return "", None
    path = folder / name.strip()  # relative names are next to the apps file
    try:
        value = path.read_bytes().strip()
    except OSError as exc:
        problems.append(
            f"{label}.jwt_hs256_secret_file {name!r} cannot be read: "
            f"{exc.strerror or type(exc).__name__}"
        )
        return "", None
    if not MIN_HS256_SECRET_BYTES <= len(value) <= MAX_HS256_SECRET_BYTES:
        problems.append(
            f"{label}.jwt_hs256_secret_file {name!r} must hold a key of "
            f"{MIN_HS256_SECRET_BYTES} to {MAX_HS256_SECRET_BYTES} bytes (App Services' bounds)"
        )
        return "", None
    return str(path), SigningSecret(value)


def _app(entry: Any, label: str, folder: Path, problems: list[str]) -> AppConfig | None:
    if not isinstance(entry, dict):
        problems.append(f"{label} must be a table of fields")
        return None
    before = len(problems)
    unknown = sorted(set(entry) - _FIELDS)
    if unknown:
        problems.append(f"{label}: unknown field(s) {', '.join(unknown)}")
    for name in _REQUIRED:
        if not entry.get(name):
            problems.append(f"{label}.{name} is required")
    key = _text(entry, "key", label, problems)
    if key and not _KEY.match(key):
        problems.append(
            f"{label}.key must be 1 to 32 lower-case letters, digits and '-' (it appears in URLs)"
        )
    name = _text(entry, "name", label, problems)
    if len(name) > _MAX_NAME or any(not ch.isprintable() for ch in name):
        problems.append(f"{label}.name must be at most {_MAX_NAME} printable characters")
    app_id = _text(entry, "app_id", label, problems)
    if app_id and not _APP_ID.match(app_id):
        problems.append(f"{label}.app_id must be an App Services app id such as myapp-abcde")
    environment = _text(entry, "environment", label, problems)
    if environment and environment not in ENVIRONMENTS:
        problems.append(f"{label}.environment must be one of {', '.join(ENVIRONMENTS)}")
    base_url = _text(entry, "base_url", label, problems, DEFAULT_BASE_URL).rstrip("/")
    hosts = _strings(entry, "allowed_hosts", label, problems)
    if hosts is None:
        hosts = tuple(default_allowed_hosts(base_url))
    problem = origin_problem(base_url, hosts)
    if problem:
        shown = "" if "@" in base_url else f" {base_url!r}"
        problem = problem.replace("APPSERVICES_ALLOWED_HOSTS", "allowed_hosts")
        problems.append(f"{label}.base_url{shown} {problem}")
    groups = {
        f"{role}_groups": _strings(entry, f"{role}_groups", label, problems) for role in APP_ROLES
    }
    maximum = _minutes(entry, "max_act_for_minutes", label, problems, DEFAULT_MAX_ACT_FOR_MINUTES)
    duration = _minutes(
        entry,
        "default_act_for_minutes",
        label,
        problems,
        min(DEFAULT_ACT_FOR_MINUTES, maximum),
    )
    if duration > maximum:
        problems.append(
            f"{label}.default_act_for_minutes ({duration}) is above max_act_for_minutes ({maximum})"
        )
    algorithm = _text(entry, "jwt_algorithm", label, problems, "RS256")
    secret_file, secret = "", None
    if algorithm not in JWT_ALGORITHMS:
        problems.append(
            f"{label}.jwt_algorithm must be RS256 (keyadmin's JWK URI) or HS256 (a manual "
            "signing key)"
        )
    elif algorithm == "HS256":
        secret_file, secret = _secret(entry, label, folder, problems)
    elif "jwt_hs256_secret_file" in entry:
        problems.append(f"{label}.jwt_hs256_secret_file is only read with jwt_algorithm HS256")
    customer_label = _text(entry, "customer_label", label, problems)
    if len(customer_label) > _MAX_NAME or any(not ch.isprintable() for ch in customer_label):
        problems.append(f"{label}.customer_label must be at most {_MAX_NAME} printable characters")
    app = AppConfig(
        key=key,
        name=name,
        app_id=app_id,
        base_url=base_url,
        allowed_hosts=hosts,
        environment=environment,
        **groups,
        act_for_enabled=_flag(entry, "act_for_enabled", label, problems),
        customer_label=customer_label,
        customer_pattern=_pattern(entry, "customer_pattern", label, problems),
        ticket_pattern=_pattern(entry, "ticket_pattern", label, problems),
        max_act_for_minutes=maximum,
        default_act_for_minutes=duration,
        delete_new_users=_flag(
            entry, "delete_new_users", label, problems, default=environment != "production"
        ),
        jwt_audience=_text(entry, "jwt_audience", label, problems),
        jwt_algorithm=algorithm,
        jwt_hs256_secret_file=secret_file,
        jwt_hs256_secret=secret,
        review_days=_review_days(entry, label, problems),
    )
    return app if len(problems) == before else None
