"""keyadmin settings, read from the environment.

Production is the default: DEBUG is off unless KEYADMIN_DEBUG=true, and the secrets must be given.
`make run` asks for the development profile explicitly.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

from keyadmin.origins import allowlist_problem, origin_problem

BASE_DIR = Path(__file__).resolve().parent.parent


def env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(name, default)


def envbool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {value!r}")


def envfloat(name: str, default: float) -> float:
    value = os.environ.get(name)
    if value is None:
        return default
    try:
        number = float(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, not {value!r}") from None
    if number <= 0:
        raise ImproperlyConfigured(f"{name} must be above zero")
    return number


def envlist(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if value is None:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


def envsecret(name: str) -> str | None:
    """A secret from NAME, or from the file NAME_FILE names (Docker/systemd credentials)."""
    path = os.environ.get(f"{name}_FILE")
    if path:
        try:
            return Path(path).read_text().strip()
        except OSError as exc:
            raise ImproperlyConfigured(
                f"{name}_FILE={path!r} cannot be read: {exc.strerror or type(exc).__name__}"
            ) from None
    return os.environ.get(name)


def envchoice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = os.environ.get(name, default).strip()
    for choice in choices:
        if value.lower() == choice.lower():
            return choice
    raise ImproperlyConfigured(f"{name} must be one of {', '.join(choices)}, not {value!r}")


DEBUG = envbool("KEYADMIN_DEBUG", False)

SECRET_KEY = envsecret("KEYADMIN_SECRET_KEY")
if not SECRET_KEY:
    raise ImproperlyConfigured("KEYADMIN_SECRET_KEY is not set (make run sets one for development)")
if not DEBUG and (len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5):
    # Django's own bar (check --deploy, security.W009), enforced: sessions and CSRF rest on it.
    raise ImproperlyConfigured(
        "KEYADMIN_SECRET_KEY is too weak: use 50 or more random characters, e.g. "
        'python -c "import secrets; print(secrets.token_urlsafe(50))"'
    )

# Encrypts the App Services tokens kept in the session (a Fernet key, never SECRET_KEY: a leaked
# SECRET_KEY must not also unlock every signed-in user's refresh token).
KEYADMIN_TOKEN_KEY = envsecret("KEYADMIN_TOKEN_KEY")
_FERNET_HOWTO = (
    'python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"'
)
if not KEYADMIN_TOKEN_KEY:
    raise ImproperlyConfigured(f"KEYADMIN_TOKEN_KEY is not set; make one with: {_FERNET_HOWTO}")
try:
    from cryptography.fernet import Fernet

    Fernet(KEYADMIN_TOKEN_KEY)
except (ValueError, TypeError):
    raise ImproperlyConfigured(
        "KEYADMIN_TOKEN_KEY is not a Fernet key (32 bytes, url-safe base64, 44 characters); "
        f"make one with: {_FERNET_HOWTO}"
    ) from None
# Keys the tokens were encrypted with before a rotation, comma-separated: still decrypted (so
# those sessions go on, and their tokens can be revoked), never used to encrypt.
_previous_keys = (envsecret("KEYADMIN_TOKEN_KEY_PREVIOUS") or "").split(",")
KEYADMIN_TOKEN_KEY_PREVIOUS = [key.strip() for key in _previous_keys if key.strip()]
for _number, _previous in enumerate(KEYADMIN_TOKEN_KEY_PREVIOUS, start=1):
    try:
        Fernet(_previous)
    except (ValueError, TypeError):
        raise ImproperlyConfigured(
            f"KEYADMIN_TOKEN_KEY_PREVIOUS: key {_number} is not a Fernet key (32 bytes, url-safe "
            "base64, 44 characters)"
        ) from None
    if _previous == KEYADMIN_TOKEN_KEY:
        raise ImproperlyConfigured(
            f"KEYADMIN_TOKEN_KEY_PREVIOUS: key {_number} is the current KEYADMIN_TOKEN_KEY"
        )

ALLOWED_HOSTS = envlist("KEYADMIN_ALLOWED_HOSTS", ["127.0.0.1", "localhost"] if DEBUG else [])
if not ALLOWED_HOSTS:
    raise ImproperlyConfigured(
        "KEYADMIN_ALLOWED_HOSTS is required without DEBUG: the host name(s) staff use to reach "
        "keyadmin, comma-separated (e.g. keyadmin.example.com)"
    )
CSRF_TRUSTED_ORIGINS = envlist("KEYADMIN_CSRF_TRUSTED_ORIGINS", [])
for _origin in CSRF_TRUSTED_ORIGINS:
    if urlsplit(_origin).scheme not in ("http", "https") or not urlsplit(_origin).netloc:
        raise ImproperlyConfigured(
            "KEYADMIN_CSRF_TRUSTED_ORIGINS takes origins such as https://keyadmin.example.com, "
            f"not {_origin!r}"
        )

# --- App Services -------------------------------------------------------------------------------

APPSERVICES_BASE_URL = env("APPSERVICES_BASE_URL", "https://services.cloud.mongodb.com").rstrip("/")
APPSERVICES_APP_ID = env("APPSERVICES_APP_ID", "")
APPSERVICES_TIMEOUT = (
    envfloat("APPSERVICES_CONNECT_TIMEOUT", 3.05),
    envfloat("APPSERVICES_READ_TIMEOUT", 10.0),
)
# The most one call may take, connect, headers and body together, retry included.
APPSERVICES_DEADLINE = envfloat("APPSERVICES_DEADLINE", 15.0)
# The most a multi-key action (a lock-down, its undo, a bulk action) may take, its list and
# every key's call together; keys it did not reach in time are reported "not attempted". Under
# gunicorn's 30 s timeout and nginx's 65 s proxy_read_timeout.
KEYADMIN_BATCH_DEADLINE = envfloat("KEYADMIN_BATCH_DEADLINE", 20.0)
# A bearer token that lets a client off this machine ask /readyz?appservices=1 (keyadmin/health.py).
KEYADMIN_READYZ_TOKEN = envsecret("KEYADMIN_READYZ_TOKEN") or ""
# A bearer token that lets a scraper off this machine read /metrics (keyadmin/metrics_views.py).
KEYADMIN_METRICS_TOKEN = envsecret("KEYADMIN_METRICS_TOKEN") or ""
if 0 < len(KEYADMIN_METRICS_TOKEN) < 32:
    raise ImproperlyConfigured(
        "KEYADMIN_METRICS_TOKEN must be at least 32 characters (python -c "
        "'import secrets; print(secrets.token_urlsafe(32))')"
    )
# Hosts the location answer may send tokens to; "*." entries match any subdomain. A location
# answer keeps the base URL's scheme and port unless an entry names its origin in full
# (scheme://host:port).
APPSERVICES_ALLOWED_HOSTS = envlist(
    "APPSERVICES_ALLOWED_HOSTS",
    [urlsplit(APPSERVICES_BASE_URL).hostname or "", "*.services.cloud.mongodb.com"],
)
_problem = allowlist_problem(APPSERVICES_ALLOWED_HOSTS)
if _problem:
    raise ImproperlyConfigured(f"APPSERVICES_ALLOWED_HOSTS: {_problem}")


_problem = origin_problem(APPSERVICES_BASE_URL, APPSERVICES_ALLOWED_HOSTS)
if _problem:
    _shown = "" if "@" in APPSERVICES_BASE_URL else f" ({APPSERVICES_BASE_URL!r})"
    raise ImproperlyConfigured(f"APPSERVICES_BASE_URL{_shown} {_problem}")

# --- App Services apps (keyadmin/appsfile.py, docs/apps.md) ------------------------------------
# Every app staff may work on: the file KEYADMIN_APPS_FILE (TOML or JSON) lists them; without it,
# the one app of the APPSERVICES_* variables above. A file keyadmin cannot fully use stops
# start-up. keyadmin.appservices.apps looks them up; the first is the default.
from keyadmin.appsfile import load_apps  # noqa: E402

KEYADMIN_APPS_FILE = env("KEYADMIN_APPS_FILE", "")
KEYADMIN_APPS = load_apps(
    KEYADMIN_APPS_FILE,
    base_url=APPSERVICES_BASE_URL,
    app_id=APPSERVICES_APP_ID,
    allowed_hosts=APPSERVICES_ALLOWED_HOSTS,
    bridge_audience=env("KEYADMIN_BRIDGE_AUDIENCE", "") or "",
)
# --- end of App Services apps -------------------------------------------------------------------

# --- Staff identity -----------------------------------------------------------------------------
# One source of staff identity, chosen by KEYADMIN_SSO (docs/sso.md): remote-user, assertion,
# oidc, or dev (DEBUG only). Start-up stops with ImproperlyConfigured when it is incomplete.


def envint(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {value!r}") from None


KEYADMIN_SSO = env("KEYADMIN_SSO", "dev" if DEBUG else "")
KEYADMIN_SSO_ISSUER = env("KEYADMIN_SSO_ISSUER", "")  # remote-user, assertion: the `iss` pinned
KEYADMIN_SSO_ALLOWED_GROUPS = envlist("KEYADMIN_SSO_ALLOWED_GROUPS", [])
KEYADMIN_SSO_GROUPS_CLAIM = env("KEYADMIN_SSO_GROUPS_CLAIM", "groups")
KEYADMIN_SSO_ALGORITHMS = envlist("KEYADMIN_SSO_ALGORITHMS", ["RS256", "ES256"])
KEYADMIN_SSO_SIGNOUT_URL = env("KEYADMIN_SSO_SIGNOUT_URL", "")
# remote-user: WSGI environ variables the front server sets (never HTTP_* request headers).
KEYADMIN_SSO_REMOTE_GROUPS_VAR = env("KEYADMIN_SSO_REMOTE_GROUPS_VAR", "OIDC_CLAIM_groups")
KEYADMIN_SSO_REMOTE_NAME_VAR = env("KEYADMIN_SSO_REMOTE_NAME_VAR", "OIDC_CLAIM_name")
KEYADMIN_SSO_REMOTE_EMAIL_VAR = env("KEYADMIN_SSO_REMOTE_EMAIL_VAR", "OIDC_CLAIM_email")
# What the front server puts between group names (mod_auth_openidc's OIDCClaimDelimiter).
KEYADMIN_SSO_REMOTE_GROUPS_SEPARATOR = env("KEYADMIN_SSO_REMOTE_GROUPS_SEPARATOR", ",")
# assertion: the identity-aware proxy's signed JWT header and its keys.
KEYADMIN_SSO_ASSERTION_HEADER = env("KEYADMIN_SSO_ASSERTION_HEADER", "")
KEYADMIN_SSO_JWKS_URL = env("KEYADMIN_SSO_JWKS_URL", "")
KEYADMIN_SSO_AUDIENCE = envlist("KEYADMIN_SSO_AUDIENCE", [])
# Longest an assertion may be valid for, and oldest it may be (exp - iat, now - iat).
KEYADMIN_SSO_MAX_ASSERTION_SECONDS = envint("KEYADMIN_SSO_MAX_ASSERTION_SECONDS", 24 * 60 * 60)
KEYADMIN_SSO_ASSERTION_TYP = env("KEYADMIN_SSO_ASSERTION_TYP", "")  # "" = typ not checked
# oidc: keyadmin's own OpenID Connect login (explicit endpoints, no discovery at start-up).
KEYADMIN_OIDC_ISSUER = env("KEYADMIN_OIDC_ISSUER", "")
KEYADMIN_OIDC_CLIENT_ID = env("KEYADMIN_OIDC_CLIENT_ID", "")
KEYADMIN_OIDC_CLIENT_SECRET = envsecret("KEYADMIN_OIDC_CLIENT_SECRET") or ""
KEYADMIN_OIDC_AUTHORIZATION_ENDPOINT = env("KEYADMIN_OIDC_AUTHORIZATION_ENDPOINT", "")
KEYADMIN_OIDC_TOKEN_ENDPOINT = env("KEYADMIN_OIDC_TOKEN_ENDPOINT", "")
KEYADMIN_OIDC_USERINFO_ENDPOINT = env("KEYADMIN_OIDC_USERINFO_ENDPOINT", "")
KEYADMIN_OIDC_JWKS_ENDPOINT = env("KEYADMIN_OIDC_JWKS_ENDPOINT", "")
KEYADMIN_OIDC_END_SESSION_ENDPOINT = env("KEYADMIN_OIDC_END_SESSION_ENDPOINT", "")
KEYADMIN_OIDC_SCOPES = env("KEYADMIN_OIDC_SCOPES", "openid email profile")
KEYADMIN_OIDC_TOKEN_AUTH = env("KEYADMIN_OIDC_TOKEN_AUTH", "client_secret_basic")
# Roles: the SSO groups that grant each one (keyadmin/sso/roles.py).
KEYADMIN_ROLE_GROUPS_VIEWER = envlist("KEYADMIN_ROLE_GROUPS_VIEWER", [])
KEYADMIN_ROLE_GROUPS_OPERATOR = envlist("KEYADMIN_ROLE_GROUPS_OPERATOR", [])
KEYADMIN_ROLE_GROUPS_AUDITOR = envlist("KEYADMIN_ROLE_GROUPS_AUDITOR", [])
KEYADMIN_ROLE_GROUPS_ACT_FOR = envlist("KEYADMIN_ROLE_GROUPS_ACT_FOR", [])
# The App Services custom-token bridge (keyadmin/sso/bridge.py).
KEYADMIN_APPSERVICES_BRIDGE = envbool("KEYADMIN_APPSERVICES_BRIDGE", False)
KEYADMIN_BRIDGE_PRIVATE_KEY = envsecret("KEYADMIN_BRIDGE_PRIVATE_KEY") or ""
KEYADMIN_BRIDGE_PREVIOUS_PUBLIC_KEY = envsecret("KEYADMIN_BRIDGE_PREVIOUS_PUBLIC_KEY") or ""
KEYADMIN_BRIDGE_KEY_ID = env("KEYADMIN_BRIDGE_KEY_ID", "")  # default: the key's RFC 7638 thumbprint
KEYADMIN_BRIDGE_AUDIENCE = env("KEYADMIN_BRIDGE_AUDIENCE", "")  # default: APPSERVICES_APP_ID
KEYADMIN_BRIDGE_TOKEN_SECONDS = envint("KEYADMIN_BRIDGE_TOKEN_SECONDS", 120)
# The audit trail.
KEYADMIN_AUDIT_RETENTION_DAYS = envint("KEYADMIN_AUDIT_RETENTION_DAYS", 365)
KEYADMIN_TRUSTED_PROXY_COUNT = max(envint("KEYADMIN_TRUSTED_PROXY_COUNT", 0), 0)
KEYADMIN_TRUST_REQUEST_ID_HEADER = envbool("KEYADMIN_TRUST_REQUEST_ID_HEADER", False)


def envcount(name: str, default: int) -> int:
    number = envint(name, default)
    if number < 1:
        raise ImproperlyConfigured(f"{name} must be 1 or more, not {number}")
    return number


# Sign-in throttling (keyadmin/throttle.py, docs/deploy.md): attempts counted in the database, so
# the limits hold across workers and instances. Each limit is per window; over it, sign-ins of
# that kind wait until the window ends, and the wait doubles with each block in a row.
KEYADMIN_SIGNIN_WINDOW_SECONDS = envcount("KEYADMIN_SIGNIN_WINDOW_SECONDS", 15 * 60)
KEYADMIN_SIGNIN_MAX_BLOCK_SECONDS = envcount("KEYADMIN_SIGNIN_MAX_BLOCK_SECONDS", 60 * 60)
KEYADMIN_SIGNIN_TARGET_LIMIT = envcount("KEYADMIN_SIGNIN_TARGET_LIMIT", 5)  # per email / API key
KEYADMIN_SIGNIN_STAFF_LIMIT = envcount("KEYADMIN_SIGNIN_STAFF_LIMIT", 20)  # failures per staff
KEYADMIN_SIGNIN_ADDRESS_LIMIT = envcount("KEYADMIN_SIGNIN_ADDRESS_LIMIT", 50)  # failures per IP
KEYADMIN_SIGNIN_ANONYMOUS_LIMIT = envcount("KEYADMIN_SIGNIN_ANONYMOUS_LIMIT", 10)  # every one
KEYADMIN_DEV_SIGNIN_LIMIT = envcount("KEYADMIN_DEV_SIGNIN_LIMIT", 30)  # every one, per IP
# Starts of acting for a customer, every one, in the same window: per staff member, and per
# staff member on one app (a burst on one app should not use up the others).
KEYADMIN_ACT_FOR_STAFF_LIMIT = envcount("KEYADMIN_ACT_FOR_STAFF_LIMIT", 20)
KEYADMIN_ACT_FOR_APP_LIMIT = envcount("KEYADMIN_ACT_FOR_APP_LIMIT", 10)

from keyadmin.sso.config import check as _check_staff_identity  # noqa: E402

_check_staff_identity(globals())

# No password sign-in exists: sessions are opened only after an identity source verified someone.
AUTHENTICATION_BACKENDS = [
    "keyadmin.sso.backends.StaffBackend",
    "keyadmin.sso.oidc.StaffOIDCBackend",  # answers only when KEYADMIN_SSO=oidc
]

# --- Django -------------------------------------------------------------------------------------

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.forms",  # the widget templates, for FORM_RENDERER's project-wide lookup
    "django_htmx",
    "template_partials.apps.SimpleAppConfig",
    "csp",
    "keyadmin",
]

MIDDLEWARE = [
    # First: its Server-Timing `app` figure covers every other middleware (keyadmin/timing.py).
    "keyadmin.timing.server_timing",
    # Next: it counts every answer, the https redirects and refusals of the others included
    # (server_timing makes none of its own).
    "keyadmin.metrics.http_requests",
    "django.middleware.security.SecurityMiddleware",
    "keyadmin.middleware.request_id",
    "keyadmin.middleware.access_log",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    # Above staff_identity: its refusal pages (401/403) get the same headers as every page, and
    # request.htmx exists before any keyadmin code looks at the request.
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "keyadmin.middleware.no_store_when_signed_in",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "keyadmin.sso.middleware.staff_identity",
    # After staff_identity and messages: an act-for time box past its end is ended (revoked,
    # audited once) before any view shows the customer's keys.
    "keyadmin.keys.guards.acting_time_box",
]

ROOT_URLCONF = "keyadmin.urls"
WSGI_APPLICATION = "keyadmin.wsgi.application"

TEMPLATES = [
    {
        # Django's backend, with renders timed for Server-Timing (keyadmin/timing.py).
        "BACKEND": "keyadmin.timing.TimedDjangoTemplates",
        "NAME": "django",  # the alias Django's own backend has, which code looks up by
        "DIRS": [BASE_DIR / "templates"],
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "keyadmin.context_processors.keyadmin",
            ],
            "builtins": ["template_partials.templatetags.partials"],
            "loaders": [
                (
                    "template_partials.loader.Loader",
                    [
                        (
                            "django.template.loaders.cached.Loader",
                            [
                                "django.template.loaders.filesystem.Loader",
                                "django.template.loaders.app_directories.Loader",
                            ],
                        )
                    ],
                )
            ],
        },
    }
]

FORM_RENDERER = "keyadmin.forms.FormRenderer"

# SQLite by default (one instance); PostgreSQL through DATABASE_URL (several instances share it).
# Only these two: the audit trail's append-only trigger exists for them (migration 0002).
DATABASE_URL = envsecret("DATABASE_URL") or ""
_DATABASE_ENGINES = ("django.db.backends.postgresql", "django.db.backends.sqlite3")
if DATABASE_URL:
    import dj_database_url

    try:
        _database = dict(
            dj_database_url.parse(
                DATABASE_URL,
                conn_max_age=envint("KEYADMIN_DB_CONN_MAX_AGE", 60),
                conn_health_checks=True,  # a connection the server dropped is replaced, not used
            )
        )
    except ValueError:
        # Never the URL itself in the message: it may hold the password.
        raise ImproperlyConfigured(
            "DATABASE_URL is not a database URL: use postgres://USER:PASSWORD@HOST:PORT/NAME "
            f"(scheme {urlsplit(DATABASE_URL).scheme!r})"
        ) from None
    if _database.get("ENGINE") not in _DATABASE_ENGINES:
        raise ImproperlyConfigured(
            f"DATABASE_URL: keyadmin runs on PostgreSQL (postgres://) or SQLite (sqlite:///), "
            f"not {urlsplit(DATABASE_URL).scheme!r}"
        )
else:
    _database = {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": env("KEYADMIN_SQLITE_PATH", str(BASE_DIR / "var" / "keyadmin.sqlite3")),
        # Measured with make bench: persistent connections, WAL and IMMEDIATE transactions cut a
        # write action's CPU by about a third and an audit insert's p99 under 16 writers from
        # 330 ms to 10 ms. synchronous=NORMAL may lose the last commits on power loss, not on a
        # crash; deployments that cannot accept that use PostgreSQL.
        "CONN_MAX_AGE": envint("KEYADMIN_DB_CONN_MAX_AGE", 600),
        "OPTIONS": {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
        },
    }
if envint("KEYADMIN_DB_CONN_MAX_AGE", 0) < 0:
    raise ImproperlyConfigured(
        "KEYADMIN_DB_CONN_MAX_AGE must be 0 (close after each request) or more"
    )
DATABASES = {"default": _database}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Tokens live in the session, so it must be server-side (never signed cookies).
# Django's database sessions, each row read without the ORM's per-call overhead.
SESSION_ENGINE = "keyadmin.sessions"
SESSION_COOKIE_AGE = int(envfloat("KEYADMIN_SESSION_SECONDS", 10 * 60 * 60))  # one shift
# A staff session unused for this long ends (App Services token revoked), whatever its age.
KEYADMIN_SESSION_IDLE_SECONDS = int(envfloat("KEYADMIN_SESSION_IDLE_SECONDS", 30 * 60))
if KEYADMIN_SESSION_IDLE_SECONDS < 120:
    # Activity is written to the session at most once a minute, so less cannot be kept to.
    raise ImproperlyConfigured("KEYADMIN_SESSION_IDLE_SECONDS must be at least 120")
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = not DEBUG
CSRF_COOKIE_SECURE = not DEBUG
if not DEBUG:
    # __Host- cookies need Secure, which a plain-http development server cannot offer.
    SESSION_COOKIE_NAME = "__Host-sessionid"
    CSRF_COOKIE_NAME = "__Host-csrftoken"
MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"

SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SECURE_SSL_REDIRECT = envbool("KEYADMIN_SSL_REDIRECT", not DEBUG)
# Health checks come from the process manager or load balancer, often over plain http.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
SECURE_HSTS_SECONDS = 0 if DEBUG else 31536000
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
# Preload is a promise to browsers that the whole domain is https-only; off only by choice.
SECURE_HSTS_PRELOAD = envbool("KEYADMIN_HSTS_PRELOAD", not DEBUG)

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    }
}

LOGIN_URL = "sso:staff-signin"

LANGUAGE_CODE = "en"
# The language follows the browser (Accept-Language) unless staff pick one in the header.
# Each language is named in itself, so it can be found by someone who does not read the other.
LANGUAGES = [("en", "English"), ("es", "Español")]
LOCALE_PATHS = [BASE_DIR / "locale"]
LANGUAGE_COOKIE_AGE = 365 * 24 * 60 * 60
LANGUAGE_COOKIE_HTTPONLY = True
LANGUAGE_COOKIE_SAMESITE = "Lax"
LANGUAGE_COOKIE_SECURE = not DEBUG
if not DEBUG:
    LANGUAGE_COOKIE_NAME = "__Host-language"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env("KEYADMIN_STATIC_ROOT", "") or BASE_DIR / "staticfiles")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "keyadmin.staticfiles.MinifiedCompressedManifestStaticFilesStorage"
        )
    },
}

# To stderr: one line per request (keyadmin.access) and keyadmin's own events; `json` for log
# shipping. Lines never hold tokens, cookies or secrets (keyadmin/logformat.py).
from keyadmin import logformat  # noqa: E402

KEYADMIN_LOG_LEVEL = envchoice("KEYADMIN_LOG_LEVEL", "INFO", logformat.LEVELS)
KEYADMIN_LOG_FORMAT = envchoice("KEYADMIN_LOG_FORMAT", "plain", logformat.FORMATS)
LOGGING = logformat.logging_config(KEYADMIN_LOG_LEVEL, KEYADMIN_LOG_FORMAT)
# Error reports (ADMINS e-mails) hide the CSRF secret and cookies too (keyadmin/reporting.py).
DEFAULT_EXCEPTION_REPORTER_FILTER = "keyadmin.reporting.ReporterFilter"
