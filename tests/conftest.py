"""Shared fixtures: a real local App Services server per test session, on loopback.

Tests talk to it over HTTP exactly as keyadmin does; its `/_emulator/` controls inject faults and
report how many upstream requests each action cost.
"""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's sync API runs a loop

import secrets
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parent.parent
APP_ID = os.environ["APPSERVICES_APP_ID"]


# The controls always go straight to the loopback server, even while a test sets proxy variables.
_CONTROL = requests.Session()
_CONTROL.trust_env = False


def mark_folder(items: list[pytest.Item], folder: Path, *marks: pytest.MarkDecorator) -> None:
    """Give every test under `folder` these marks, unless its module chose its own of that name."""
    for item in items:
        if not item.path.is_relative_to(folder):
            continue
        for mark in marks:
            if item.get_closest_marker(mark.name) is None:
                item.add_marker(mark)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class EmulatorHandle:
    """The running local App Services server and its test controls."""

    url: str
    app_id: str
    db_path: Path
    process: subprocess.Popen

    def _control(self, method: str, path: str, **kwargs) -> requests.Response:
        response = _CONTROL.request(method, f"{self.url}/_emulator/{path}", timeout=5, **kwargs)
        response.raise_for_status()
        return response

    def stats(self) -> dict:
        return self._control("GET", "stats").json()

    def request_count(self, route: str | None = None) -> int:
        stats = self.stats()
        return stats["total"] if route is None else stats["by_route"].get(route, 0)

    def reset_stats(self) -> None:
        self._control("POST", "stats/reset")

    def add_fault(self, **spec) -> str:
        return self._control("POST", "faults", json=spec).json()["id"]

    def clear_faults(self) -> None:
        self._control("DELETE", "faults")

    def set_latency(self, ms: int) -> None:
        self._control("POST", "latency", json={"ms": ms})

    def create_user(self, email: str, password: str) -> str:
        return self._control("POST", "users", json={"email": email, "password": password}).json()[
            "user_id"
        ]

    def keys_of(self, email: str) -> list[dict]:
        return self._control("GET", "keys", params={"email": email}).json()["keys"]


def start_emulator(db_path: Path, *extra: str) -> EmulatorHandle:
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "manage.py",
            "emulator",
            "--addr",
            f"127.0.0.1:{port}",
            "--app-id",
            APP_ID,
            "--db",
            str(db_path),
            *extra,
        ],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"},
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the local App Services server exited with {process.returncode}")
        try:
            requests.get(f"{url}/_emulator/stats", timeout=1)
            break
        except requests.ConnectionError:
            time.sleep(0.05)
    else:
        process.kill()
        raise RuntimeError("the local App Services server did not start within 20 s")
    return EmulatorHandle(url=url, app_id=APP_ID, db_path=db_path, process=process)


@pytest.fixture(scope="session")
def emulator(tmp_path_factory) -> EmulatorHandle:
    handle = start_emulator(tmp_path_factory.mktemp("emulator") / "appservices.sqlite3")
    yield handle
    handle.process.terminate()
    handle.process.wait(timeout=10)


@pytest.fixture(autouse=True)
def _point_keyadmin_at_emulator(request, settings):
    """Every test's keyadmin talks to the session's local server, with no faults left over."""
    if "emulator" not in request.fixturenames and not request.node.get_closest_marker("browser"):
        settings.APPSERVICES_BASE_URL = "http://127.0.0.1:9"  # nothing listens: fail loudly
        settings.APPSERVICES_ALLOWED_HOSTS = ["127.0.0.1"]
        yield
        return
    emulator = request.getfixturevalue("emulator")
    settings.APPSERVICES_BASE_URL = emulator.url
    settings.APPSERVICES_ALLOWED_HOSTS = ["127.0.0.1"]
    yield
    emulator.clear_faults()
    emulator.set_latency(0)


@pytest.fixture(autouse=True)
def _staff_sso(request, settings):
    """Tests marked `staff_sso` run with the test SSO issuer, so staff hold real roles."""
    if request.node.get_closest_marker("staff_sso"):
        from tests.sso.staff import configure

        configure(settings)


@pytest.fixture
def user_credentials(emulator) -> tuple[str, str]:
    """A fresh App Services user (email, password) with no keys."""
    email = f"user-{secrets.token_hex(4)}@example.com"
    password = secrets.token_urlsafe(12)
    emulator.create_user(email, password)
    return email, password
