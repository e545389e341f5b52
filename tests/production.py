"""keyadmin as production runs it, for the serving and two-instance tests.

`production_env()` is the environment of a server: keyadmin.settings (DEBUG off), fresh secrets,
the oidc sign-in mode with the test issuer (tests/sso/staff.py; its endpoints are at a reserved
.invalid name and never contacted), a file SQLite database unless a DATABASE_URL is given, and a
static root of its own. `Server` runs it under gunicorn with the committed gunicorn.conf.py on a
free loopback port; `Browser` talks to it as a browser would (the production cookies are
`__Host-` and Secure, which no cookie jar sends over plain http, so cookies are kept here); and
`staff_session()` makes a signed-in staff session directly in the server's database, as the
SSO callback would.

Nothing here prints a session key, a token or a secret.
"""

from __future__ import annotations

import atexit
import base64
import functools
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from http.cookies import SimpleCookie
from pathlib import Path

import requests

from bench.harness import Gunicorn
from tests.conftest import ROOT
from tests.sso.staff import ALLOWED, TEST_ISSUER

SESSION_COOKIE = "__Host-sessionid"
CSRF_COOKIE = "__Host-csrftoken"
_OWN = ("KEYADMIN_", "APPSERVICES_", "DJANGO_", "GUNICORN_", "DATABASE_URL")

SSO_ENV = {
    "KEYADMIN_SSO": "oidc",
    "KEYADMIN_OIDC_ISSUER": TEST_ISSUER,
    "KEYADMIN_OIDC_CLIENT_ID": "keyadmin-test",
    "KEYADMIN_OIDC_AUTHORIZATION_ENDPOINT": f"{TEST_ISSUER}/authorize",
    "KEYADMIN_OIDC_TOKEN_ENDPOINT": f"{TEST_ISSUER}/token",
    "KEYADMIN_OIDC_JWKS_ENDPOINT": f"{TEST_ISSUER}/jwks",
    "KEYADMIN_SSO_ALLOWED_GROUPS": ALLOWED,
    "KEYADMIN_ROLE_GROUPS_VIEWER": "role-viewer",
    "KEYADMIN_ROLE_GROUPS_OPERATOR": "role-operator",
    "KEYADMIN_ROLE_GROUPS_AUDITOR": "role-auditor",
}


@functools.cache
def collected_static() -> Path:
    """`collectstatic` with the production storage, once per test run (the output is the same)."""
    root = Path(tempfile.mkdtemp(prefix="keyadmin-static-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    env = production_env(root, KEYADMIN_STATIC_ROOT=str(root))
    manage(env, "collectstatic", "--noinput", "--verbosity", "0")
    return root


def production_env(
    workdir: Path, upstream_url: str = "http://127.0.0.1:9", **overrides: str
) -> dict[str, str]:
    """A production keyadmin's environment: nothing inherited that could change what it does.

    Its static root is `collected_static()` unless KEYADMIN_STATIC_ROOT is given.
    """
    env = {name: value for name, value in os.environ.items() if not name.startswith(_OWN)}
    env.update(SSO_ENV)
    env.update(
        DJANGO_SETTINGS_MODULE="keyadmin.settings",
        KEYADMIN_SECRET_KEY=secrets.token_urlsafe(50),
        KEYADMIN_TOKEN_KEY=base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        KEYADMIN_OIDC_CLIENT_SECRET=secrets.token_urlsafe(32),
        KEYADMIN_SQLITE_PATH=str(workdir / "keyadmin.sqlite3"),
        KEYADMIN_ALLOWED_HOSTS="127.0.0.1",
        APPSERVICES_BASE_URL=upstream_url,
        APPSERVICES_APP_ID=os.environ["APPSERVICES_APP_ID"],
        APPSERVICES_ALLOWED_HOSTS="127.0.0.1",
        PYTHONUNBUFFERED="1",
    )
    env.update(overrides)
    if "KEYADMIN_STATIC_ROOT" not in env:
        env["KEYADMIN_STATIC_ROOT"] = str(collected_static())
    return env


def manage(env: dict[str, str], *args: str) -> None:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, f"manage.py {args[0]} failed:\n{result.stderr[-3000:]}"


STAFF_SESSION = """
import os, sys
import django
django.setup()
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore
from tests.sso.staff import staff_user
user = staff_user(*sys.argv[2:], name=sys.argv[1])
session = SessionStore()
session[SESSION_KEY] = str(user.pk)
session[BACKEND_SESSION_KEY] = "keyadmin.sso.backends.StaffBackend"
session[HASH_SESSION_KEY] = user.get_session_auth_hash()
session.create()
fd = os.open(os.environ["STAFF_SESSION_OUT"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
with os.fdopen(fd, "w") as out:
    out.write(session.session_key)
"""


def staff_session(env: dict[str, str], workdir: Path, name: str, *roles: str) -> str:
    """A signed-in staff session in the server's database (its key; never printed)."""
    out = workdir / f"staff-session-{secrets.token_hex(4)}"
    result = subprocess.run(
        [sys.executable, "-c", STAFF_SESSION, name, *roles],
        cwd=ROOT,
        env={**env, "STAFF_SESSION_OUT": str(out)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    key = out.read_text()
    out.unlink()
    return key


def keyadmin_server(
    env: dict[str, str], log_path: Path, threads: int = 4, workers: int = 1
) -> Gunicorn:
    """One keyadmin instance under the committed gunicorn config (bench's runner)."""
    return Gunicorn(
        env={**env, "KEYADMIN_THREADS": str(threads)}, log_path=log_path, workers=workers
    )


class Browser:
    """Requests with cookies kept by hand (Secure `__Host-` cookies over loopback http)."""

    def __init__(self, cookies: dict[str, str] | None = None) -> None:
        self.cookies = dict(cookies or {})
        self.http = requests.Session()
        self.http.trust_env = False

    def request(self, method: str, url: str, **kwargs) -> requests.Response:
        headers = dict(kwargs.pop("headers", {}) or {})
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if method != "GET" and CSRF_COOKIE in self.cookies:
            headers["X-CSRFToken"] = self.cookies[CSRF_COOKIE]
        response = self.http.request(
            method, url, headers=headers, allow_redirects=False, timeout=30, **kwargs
        )
        for header in response.raw.headers.getlist("Set-Cookie"):
            for name, morsel in SimpleCookie(header).items():
                if morsel.value and morsel["max-age"] != "0":
                    self.cookies[name] = morsel.value
                else:
                    self.cookies.pop(name, None)
        return response

    def get(self, url: str, **kwargs) -> requests.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs) -> requests.Response:
        return self.request("POST", url, **kwargs)

    def close(self) -> None:
        self.http.close()
