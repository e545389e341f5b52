"""Running keyadmin as production does, for the load test and `make bench`.

keyadmin under gunicorn (the committed gunicorn.conf.py, DEBUG off, a migrated file SQLite
database and collected static files in a temporary directory), staff sessions made directly in
that database, and a client that acts like the browser: explicit cookies (the production cookies
are `__Host-` and Secure, so no cookie jar would send them over plain http), the CSRF token htmx
sends, and the htmx request header.

Everything listens on and talks to 127.0.0.1 only. Nothing here prints a session key, a token,
a password or a key secret; `redact()` cleans a response before it goes into a failure message.
This module needs only keyadmin's runtime dependencies (no pytest).
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass, field
from http.cookiejar import DefaultCookiePolicy
from http.cookies import SimpleCookie
from pathlib import Path

import requests

from keyadmin.emulator.process import EmulatorProcess, free_port
from keyadmin.redact import OPAQUE_IN_AUDIT, for_log

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable

# keyadmin/settings.py, DEBUG off.
SESSION_COOKIE = "__Host-sessionid"
CSRF_COOKIE = "__Host-csrftoken"

KEYS = "/keys/"
CREATE = "/keys/new/"
SIGNIN = "/appservices/sign-in/"
ACT_FOR_START = "/appservices/act-for/"
ACT_FOR_END = "/appservices/act-for/end/"
CLIENT_API = "/api/client/v2.0"

# Variables that would change what the server under test does; the harness sets its own
# (DATABASE_URL too: the database is always this run's own SQLite file; PROMETHEUS_MULTIPROC_DIR
# too: two servers must not share one, and gunicorn.conf.py makes one per start without it).
_OWN_PREFIXES = ("KEYADMIN_", "APPSERVICES_", "DJANGO_", "GUNICORN_", "DATABASE_URL", "PROMETHEUS_")


def plain_session() -> requests.Session:
    """A keep-alive HTTP session that ignores proxy variables and keeps no cookies itself."""
    session = requests.Session()
    session.trust_env = False
    session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))
    return session


def wait_for_http(url: str, process: subprocess.Popen, what: str, seconds: float = 30) -> None:
    probe = plain_session()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode} while starting")
        try:
            probe.get(url, timeout=1, allow_redirects=False)
            return
        except requests.ConnectionError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not answer within {seconds:.0f} s")


def stop(process: subprocess.Popen | None, seconds: float = 15) -> None:
    """SIGTERM, then SIGKILL if it has not exited in time."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


# --- keyadmin in production mode ---


# Staff identity: oidc, a login-based mode, so a session made in the database carries the identity.
# The provider lives at a reserved .invalid name and is never contacted: nobody logs in through
# it, the sessions already exist. Staff hold the viewer and operator roles through these groups.
SSO_ISSUER = "https://sso.bench.invalid"
SSO_ENV = {
    "KEYADMIN_SSO": "oidc",
    "KEYADMIN_OIDC_ISSUER": SSO_ISSUER,
    "KEYADMIN_OIDC_CLIENT_ID": "keyadmin-bench",
    "KEYADMIN_OIDC_AUTHORIZATION_ENDPOINT": f"{SSO_ISSUER}/authorize",
    "KEYADMIN_OIDC_TOKEN_ENDPOINT": f"{SSO_ISSUER}/token",
    "KEYADMIN_OIDC_JWKS_ENDPOINT": f"{SSO_ISSUER}/jwks",
    "KEYADMIN_SSO_ALLOWED_GROUPS": "keyadmin-staff",
    "KEYADMIN_ROLE_GROUPS_VIEWER": "keyadmin-viewers",
    "KEYADMIN_ROLE_GROUPS_OPERATOR": "keyadmin-operators",
    "KEYADMIN_ROLE_GROUPS_AUDITOR": "keyadmin-auditors",
    "KEYADMIN_ROLE_GROUPS_ACT_FOR": "keyadmin-act-for",
}


# What a server "built from nothing" (inherit=False) still gets from this process's environment.
PASS_THROUGH = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")


def keyadmin_env(
    workdir: Path,
    upstream_url: str,
    app_id: str,
    *,
    sso: dict[str, str] | None = None,
    inherit: bool = True,
    **overrides: str | None,
) -> dict[str, str]:
    """The environment of a production keyadmin with fresh secrets, a file DB and static root.

    Nothing of ours is inherited (`_OWN_PREFIXES`); with `inherit=False` nothing at all but
    `PASS_THROUGH`, so a test run's own softenings cannot leak into what is checked. An override
    of None leaves that variable out (keyadmin's own default then applies).
    """
    if inherit:
        env = {k: v for k, v in os.environ.items() if not k.startswith(_OWN_PREFIXES)}
    else:
        env = {k: os.environ[k] for k in PASS_THROUGH if k in os.environ}
    env.update(SSO_ENV if sso is None else sso)
    env.update(
        DJANGO_SETTINGS_MODULE="keyadmin.settings",
        KEYADMIN_SECRET_KEY=secrets.token_urlsafe(50),
        KEYADMIN_TOKEN_KEY=base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        KEYADMIN_SQLITE_PATH=str(workdir / "keyadmin.sqlite3"),
        KEYADMIN_STATIC_ROOT=str(workdir / "static"),
        KEYADMIN_ALLOWED_HOSTS="127.0.0.1",
        KEYADMIN_SSL_REDIRECT="false",
        APPSERVICES_BASE_URL=upstream_url,
        APPSERVICES_APP_ID=app_id,
        APPSERVICES_ALLOWED_HOSTS="127.0.0.1",
        PYTHONUNBUFFERED="1",
    )
    if env.get("KEYADMIN_SSO") == "oidc":
        env["KEYADMIN_OIDC_CLIENT_SECRET"] = secrets.token_urlsafe(32)
    env.update(overrides)
    return {name: value for name, value in env.items() if value is not None}


def manage(env: dict[str, str], *args: str, timeout: float = 120) -> str:
    """`manage.py ARGS` in that environment; its output, or RuntimeError with the error's tail."""
    result = subprocess.run(  # noqa: S603 - our own manage.py, fixed arguments
        [PYTHON, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if result.returncode != 0:
        raise RuntimeError(f"manage.py {args[0]} failed:\n{redact(result.stderr[-3000:], 3000)}")
    return result.stdout


def prepare_keyadmin(env: dict[str, str]) -> None:
    """Migrate the file database and collect static files (compressed, with a manifest)."""
    manage(env, "migrate", "--noinput", "--verbosity", "0")
    manage(env, "collectstatic", "--noinput", "--verbosity", "0")


def make_staff_sessions(
    env: dict[str, str], count: int, workdir: Path, name: str = "", roles: tuple[str, ...] = ()
) -> list[str]:
    """`count` signed-in staff sessions, made in the database; returns their session keys.

    Each holds `roles` (viewer and operator when none are given) through the role groups of `env`.
    """
    out = workdir / f"staff-sessions-{secrets.token_hex(4)}.json"
    subprocess.run(  # noqa: S603 - our own helper, fixed arguments
        [
            PYTHON,
            "-m",
            "bench.staff_sessions",
            str(count),
            str(out),
            *([name] if name or roles else []),
            *roles,
        ],
        cwd=ROOT,
        env=env,
        check=True,
    )
    keys = json.loads(out.read_text())
    out.unlink()
    return keys


@dataclass
class Gunicorn:
    """keyadmin under `gunicorn -c gunicorn.conf.py keyadmin.wsgi`, on a free loopback port."""

    env: dict[str, str]
    log_path: Path
    workers: int = 2
    extra_args: tuple[str, ...] = ()
    app: str = "keyadmin.wsgi"  # bench/floor_app.py runs under the same configuration
    process: subprocess.Popen | None = None
    url: str = ""

    def start(self) -> Gunicorn:
        port = free_port()
        env = {
            **self.env,
            "KEYADMIN_BIND": f"127.0.0.1:{port}",
            "KEYADMIN_WORKERS": str(self.workers),
        }
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(  # noqa: S603 - fixed arguments
                [
                    PYTHON,
                    "-m",
                    "gunicorn",
                    "-c",
                    "gunicorn.conf.py",
                    *self.extra_args,
                    self.app,
                ],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.url = f"http://127.0.0.1:{port}"
        try:
            wait_for_http(self.url + "/", self.process, "gunicorn")
            deadline = time.monotonic() + 30
            while len(self.worker_pids()) < self.workers:
                if time.monotonic() > deadline:
                    raise RuntimeError("gunicorn's workers did not all start within 30 s")
                time.sleep(0.05)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        stop(self.process, seconds=25)

    def worker_pids(self) -> list[int]:
        assert self.process is not None
        pid = self.process.pid
        try:
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            return []
        return [int(child) for child in children]

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def __enter__(self) -> Gunicorn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --- /proc readings of the workers ---

_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pids: list[int]) -> float:
    """utime + stime of these processes (all their threads), in seconds."""
    total = 0
    for pid in pids:
        stat = Path(f"/proc/{pid}/stat").read_text()
        fields = stat[stat.rindex(")") + 2 :].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / _TICKS


def memory_kib(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM from status, and Pss (shared pages split between sharers) from smaps."""
    found = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            found[name] = int(value.split()[0])
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                found["Pss"] = int(line.split()[1])
    except OSError:
        pass
    return found


# --- The browser's side ---


_CSRF_FIELD = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
_CSRF_HEADER = re.compile(r"hx-headers='\{\"x-csrftoken\": \"([^\"]+)\"\}'")
_SECRET = re.compile(r'(class="secret-value"[^>]*>)[^<]*(<)')


def redact(text: str, limit: int = 600) -> str:
    """A response excerpt fit for a failure message: no key secret, token or session key."""
    text = _SECRET.sub(r"\1[secret]\2", text)
    # Stricter than a log line: a response excerpt may hold a session key (32) or CSRF token.
    text = OPAQUE_IN_AUDIT.sub("[redacted]", for_log(text))
    return text[:limit]


BINDING_FIELD = "bound_to"  # keyadmin/keys/guards.py
BINDING_HEADER = "X-Keyadmin-Bound-To"
_BINDING_FIELD = re.compile(r'name="bound_to" value="([^"]+)"')


class StaffClient:
    """One staff member's browser: keep-alive connection, explicit cookies, htmx headers."""

    def __init__(self, base_url: str, session_key: str, timeout: float = 30) -> None:
        self.base_url = base_url
        self.http = plain_session()
        self.cookies = {SESSION_COOKIE: session_key}
        self.csrf_token = ""
        self.binding = ""  # the keys page's signed "rendered for this user and app" field
        self.timeout = timeout

    def request(
        self, method: str, path: str, *, htmx: bool = False, data: dict | None = None
    ) -> requests.Response:
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        if htmx:
            headers["HX-Request"] = "true"
            headers["HX-Current-URL"] = self.base_url + KEYS
            if method == "GET" and self.binding:
                headers[BINDING_HEADER] = self.binding  # as the page's table refreshes send it
        if method != "GET" and data is not None and self.binding:
            data = {BINDING_FIELD: self.binding, **data}
        if method != "GET":
            headers["Origin"] = self.base_url  # as a browser sends with every POST
            if htmx:
                headers["X-CSRFToken"] = self.csrf_token
        response = self.http.request(
            method,
            self.base_url + path,
            data=data,
            headers=headers,
            allow_redirects=False,
            timeout=self.timeout,
        )
        self._take_cookies(response)
        return response

    def _take_cookies(self, response: requests.Response) -> None:
        for header in response.raw.headers.getlist("Set-Cookie"):
            cookie = SimpleCookie()
            cookie.load(header)
            for name, morsel in cookie.items():
                if morsel["max-age"] == "0" or not morsel.value:
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value

    def sign_in_to_appservices(self, email: str, password: str) -> None:
        """The App Services sign-in form, then the keys page, as a browser would load them."""
        page = self.request("GET", SIGNIN)
        if page.status_code != 200:
            raise AssertionError(f"sign-in page: HTTP {page.status_code}")
        found = _CSRF_FIELD.search(page.text)
        if not found or CSRF_COOKIE not in self.cookies:
            raise AssertionError("sign-in page: no CSRF token")
        answer = self.request(
            "POST",
            SIGNIN,
            data={
                "csrfmiddlewaretoken": found.group(1),
                "provider": "local-userpass",
                "email": email,
                "password": password,
            },
        )
        if answer.status_code != 302 or answer.headers.get("Location") != KEYS:
            raise AssertionError(
                f"App Services sign-in: HTTP {answer.status_code}, {redact(answer.text, 300)}"
            )
        self.load_keys_page()

    def load_keys_page(self) -> requests.Response:
        page = self.request("GET", KEYS)
        if page.status_code != 200:
            raise AssertionError(f"keys page: HTTP {page.status_code}")
        found = _CSRF_HEADER.search(page.text)
        if not found:
            raise AssertionError("keys page: no hx-headers CSRF token")
        self.csrf_token = found.group(1)
        bound = _BINDING_FIELD.search(page.text)
        if not bound:
            raise AssertionError("keys page: no form binding")
        self.binding = bound.group(1)
        return page

    # The actions, as the keys page's htmx forms send them.

    def list_keys(self) -> requests.Response:
        return self.request("GET", KEYS, htmx=True)

    def create_key(self, name: str) -> requests.Response:
        return self.request("POST", CREATE, htmx=True, data={"name": name})

    def set_disabled(self, key: Key, disabled: bool) -> requests.Response:
        # The row's toggle form posts the key's current state.
        action = "disable" if disabled else "enable"
        data = {"name": key.name, "disabled": "true" if key.disabled else "false"}
        return self.request("POST", f"/keys/{key.id}/{action}/", htmx=True, data=data)

    def delete_key(self, key: Key) -> requests.Response:
        data = {"name": key.name, "disabled": "true" if key.disabled else "false", "confirm": "1"}
        return self.request("POST", f"/keys/{key.id}/delete/", htmx=True, data=data)

    def edit_note(self, key: Key, purpose: str) -> requests.Response:
        """The row's "Edit note" form: keyadmin's own table, no App Services request."""
        data = {
            "name": key.name,
            "disabled": "true" if key.disabled else "false",
            "purpose": purpose,
            "ticket": "",
            "owner": "",
            "review_by": "",
        }
        return self.request("POST", f"/keys/{key.id}/note/", htmx=True, data=data)

    def key_detail(self, key: Key) -> requests.Response:
        return self.request("GET", f"/keys/{key.id}/")  # a link: a full page

    def act_for_start(self, app: str, customer_id: str, ticket: str) -> requests.Response:
        """The sign-in page's act-for form (a plain form POST, answered with a redirect)."""
        data = {
            "csrfmiddlewaretoken": self.csrf_token,
            "app": app,
            "customer_id": customer_id,
            "ticket": ticket,
            "minutes": "15",
        }
        return self.request("POST", ACT_FOR_START, data=data)

    def act_for_end(self) -> requests.Response:
        """The acting banner's "End now" (bound to the acting connection, like every form)."""
        return self.request("POST", ACT_FOR_END, data={"csrfmiddlewaretoken": self.csrf_token})

    def close(self) -> None:
        self.http.close()


# --- What each answer must be ---


@dataclass
class Key:
    id: str
    name: str
    disabled: bool = False

    def public(self) -> dict:
        return {"_id": self.id, "name": self.name, "disabled": self.disabled}


@dataclass
class Ledger:
    """The keys one App Services user must have, in creation order, by the test's bookkeeping."""

    keys: dict[str, Key] = field(default_factory=dict)

    def expected(self) -> list[dict]:
        return [key.public() for key in self.keys.values()]


_ROW = re.compile(
    r'<tr id="key-([0-9a-f]{24})" class="key-row[^"]*" data-name="([^"]*)" '
    r'data-status="(enabled|disabled)"'
)
_NOTICE = '<template><div hx-swap-oob="innerHTML:#notices">'


def rows(html: str) -> list[tuple[str, str, bool]]:
    return [(kid, name, status == "disabled") for kid, name, status in _ROW.findall(html)]


def check_list(response: requests.Response, ledger: Ledger) -> str | None:
    html = response.text
    if response.status_code != 200 or not html.lstrip().startswith('<section id="key-table"'):
        return f"list: HTTP {response.status_code}, not the #key-table fragment"
    if "banner-error" in html:
        return "list: error banner"
    got = [Key(kid, name, disabled).public() for kid, name, disabled in rows(html)]
    if got != ledger.expected():
        return f"list: rows {got} != expected {ledger.expected()}"
    if f'<span id="key-count">{len(ledger.keys)}</span>' not in html:
        return "list: wrong key count"
    return None


def check_created(response: requests.Response, name: str) -> tuple[Key | None, str | None]:
    html = response.text
    if response.status_code != 200 or not html.lstrip().startswith('<form id="create-form"'):
        return None, f"create {name}: HTTP {response.status_code}, not the #create-form fragment"
    if "banner-error" in html or "field-invalid" in html:
        return None, f"create {name}: error in the form: {redact(html)}"
    found = rows(html)
    if len(found) != 1 or found[0][1] != name or found[0][2]:
        return None, f"create {name}: expected one new enabled row, got {found}"
    if 'hx-swap-oob="afterbegin:#new-secrets"' not in html:
        return None, f"create {name}: no secret panel"
    if not re.search(r'class="secret-value" translate="no">[A-Za-z0-9]{64}</code>', html):
        return None, f"create {name}: no 64-character secret in the panel"
    return Key(found[0][0], name), None


def check_toggled(response: requests.Response, key: Key, disabled: bool) -> str | None:
    html = response.text
    if response.status_code != 200 or not html.lstrip().startswith(f'<tr id="key-{key.id}"'):
        return f"toggle {key.name}: HTTP {response.status_code}, not the row fragment"
    if rows(html) != [(key.id, key.name, disabled)] or "has-error" in html:
        return f"toggle {key.name}: row {rows(html)} is not the key with disabled={disabled}"
    if _NOTICE not in html:
        return f"toggle {key.name}: no notice"
    return None


def check_note_saved(response: requests.Response, key: Key, purpose: str) -> str | None:
    html = response.text
    if response.status_code != 200 or not html.lstrip().startswith(f'<tr id="key-{key.id}"'):
        return f"note {key.name}: HTTP {response.status_code}, not the row fragment"
    if f'<p class="note-purpose">{purpose}</p>' not in html or _NOTICE not in html:
        return f"note {key.name}: the row does not show the note, or no notice"
    return None


def check_deleted(response: requests.Response, key: Key) -> str | None:
    html = response.text
    if response.status_code != 200 or not html.lstrip().startswith(_NOTICE):
        return f"delete {key.name}: HTTP {response.status_code}, not the notice fragment"
    if "<tr" in html or not re.search(f"Key “{re.escape(key.name)}”[^<]* deleted\\.", html):
        return f"delete {key.name}: not the deleted notice: {redact(html)}"
    return None


def check_detail(response: requests.Response, key: Key) -> str | None:
    html = response.text
    if response.status_code != 200 or not html.lstrip().startswith("<!doctype html>"):
        return f"detail {key.name}: HTTP {response.status_code}, not a full page"
    badge = "badge-off" if key.disabled else "badge-on"
    if f'<code id="key-id" translate="no">{key.id}</code>' not in html or badge not in html:
        return f"detail {key.name}: wrong key or status"
    if f'<dd translate="no">{key.name}</dd>' not in html:
        return f"detail {key.name}: wrong name"
    return None


# --- The local App Services server: keyadmin.emulator.process, shared with the tests ---

Emulator = EmulatorProcess
