"""keyadmin as production runs it, for the serving and two-instance tests.

`production_env()` is the environment of a server: keyadmin.settings (DEBUG off), fresh secrets,
the oidc sign-in mode with the test issuer (tests/sso/staff.py; its endpoints are at a reserved
.invalid name and never contacted), a file SQLite database unless a DATABASE_URL is given, and a
static root of its own. `Server` runs it under gunicorn with the committed gunicorn.conf.py on a
free loopback port; `Browser` talks to it as a browser would (the production cookies are
`__Host-` and Secure, which no cookie jar sends over plain http, so cookies are kept here); and
`staff_session()` makes a signed-in staff session directly in the server's database, as the
SSO callback would. All of it is bench/harness.py's, the one runner of a production keyadmin,
with the tests' SSO issuer.

Nothing here prints a session key, a token or a secret.
"""

from __future__ import annotations

import atexit
import functools
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from django.conf import settings

from bench.harness import Gunicorn, keyadmin_env, make_staff_sessions, manage
from keyadmin.sso.roles import ROLES
from tests.sso.staff import ALLOWED, TEST_ISSUER

SESSION_COOKIE = "__Host-sessionid"
CSRF_COOKIE = "__Host-csrftoken"

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
    workdir: Path, upstream_url: str = "http://127.0.0.1:9", **overrides: str | None
) -> dict[str, str]:
    """A production keyadmin's environment (bench.harness.keyadmin_env) with the test SSO.

    Unlike the bench's, https redirects stay at keyadmin's default (on) unless overridden, and the
    static root is `collected_static()` unless KEYADMIN_STATIC_ROOT is given.
    """
    overrides.setdefault("KEYADMIN_SSL_REDIRECT", None)
    if "KEYADMIN_STATIC_ROOT" not in overrides:
        overrides["KEYADMIN_STATIC_ROOT"] = str(collected_static())
    return keyadmin_env(
        workdir, upstream_url, os.environ["APPSERVICES_APP_ID"], sso=SSO_ENV, **overrides
    )


def staff_session(env: dict[str, str], workdir: Path, name: str, *roles: str) -> str:
    """A signed-in staff session in the server's database holding `roles` (all when none given).

    Its key is returned, never printed.
    """
    return make_staff_sessions(env, 1, workdir, name=name, roles=roles or ROLES)[0]


def keyadmin_server(
    env: dict[str, str], log_path: Path, threads: int = 4, workers: int = 1
) -> Gunicorn:
    """One keyadmin instance under the committed gunicorn config (bench's runner).

    One worker of 4 threads unless told otherwise; gunicorn.conf.py's own defaults are 2 x 8.
    """
    return Gunicorn(
        env={**env, "KEYADMIN_THREADS": str(threads)}, log_path=log_path, workers=workers
    )


@contextmanager
def fresh_postgresql() -> Iterator[str]:
    """A new database on DATABASE_URL's PostgreSQL server: its URL. Dropped afterwards."""
    import psycopg

    url = settings.DATABASE_URL
    name = f"keyadmin_test_{secrets.token_hex(4)}"
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield urlsplit(url)._replace(path=f"/{name}").geturl()
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def two_instances(
    database: str, workdir: Path, upstream_url: str, **overrides: str
) -> Iterator[tuple[Gunicorn, Gunicorn, dict[str, str]]]:
    """Instances A (two workers) and B (one) on one migrated database, as instances behind a load
    balancer share theirs: a SQLite file in `workdir` (`database` "sqlite"), or a PostgreSQL
    database of their own (`database` "postgresql"; skipped unless DATABASE_URL names one)."""
    with ExitStack() as stack:
        chosen = {}
        if database == "postgresql":
            if settings.DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
                pytest.skip("needs PostgreSQL: DATABASE_URL=postgres://... (make test-postgres)")
            chosen["DATABASE_URL"] = stack.enter_context(fresh_postgresql())
        env = production_env(
            workdir, upstream_url, KEYADMIN_SSL_REDIRECT="false", **overrides, **chosen
        )
        manage(env, "migrate", "--noinput", "--verbosity", "0")
        a = stack.enter_context(keyadmin_server(env, workdir / "a.log", workers=2))
        b = stack.enter_context(keyadmin_server(env, workdir / "b.log"))
        yield a, b, env


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
