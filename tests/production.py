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
import time
from http.cookies import SimpleCookie
from pathlib import Path

import requests

from tests.conftest import ROOT, free_port
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


class Server:
    """keyadmin under gunicorn, as docs/deploy.md runs it, on a free loopback port."""

    def __init__(self, env: dict[str, str], log_path: Path, threads: int = 4) -> None:
        self.env = env
        self.log_path = log_path
        self.threads = threads
        self.process: subprocess.Popen | None = None
        self.url = ""

    def start(self) -> Server:
        port = free_port()
        env = {
            **self.env,
            "KEYADMIN_BIND": f"127.0.0.1:{port}",
            "KEYADMIN_WORKERS": "1",
            "KEYADMIN_THREADS": str(self.threads),
        }
        if (ROOT / "gunicorn.conf.py").exists():
            args = ["-c", "gunicorn.conf.py"]
        else:  # the committed config is not there yet: the same essentials, as arguments
            args = ["--bind", f"127.0.0.1:{port}", "--workers", "1", "--worker-class", "gthread"]
            args += ["--threads", str(self.threads), "--preload"]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "gunicorn", *args, "keyadmin.wsgi"],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.process.returncode}:\n{self.log()}")
            try:
                # A new connection each time: a kept-alive one would hold up the graceful stop.
                with requests.Session() as probe:
                    probe.trust_env = False
                    if probe.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                        return self
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"gunicorn did not answer /healthz within 30 s:\n{self.log()}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=25)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)

    def log(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


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
