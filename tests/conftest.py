"""Shared fixtures: a real local App Services server per test session, on loopback.

Tests talk to it over HTTP exactly as keyadmin does; its `/_emulator/` controls inject faults and
report how many upstream requests each action cost.
"""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")  # Playwright's sync API runs a loop

import secrets
from pathlib import Path

import pytest

from keyadmin.emulator.process import EmulatorProcess
from tests.support import FormClient, point_keyadmin_at

ROOT = Path(__file__).resolve().parent.parent
APP_ID = os.environ["APPSERVICES_APP_ID"]


# The one running local server the tests share, and how a test starts one of its own.
EmulatorHandle = EmulatorProcess


def mark_folder(items: list[pytest.Item], folder: Path, *marks: pytest.MarkDecorator) -> None:
    """Give every test under `folder` these marks, unless its module chose its own of that name."""
    for item in items:
        if not item.path.is_relative_to(folder):
            continue
        for mark in marks:
            if item.get_closest_marker(mark.name) is None:
                item.add_marker(mark)


def start_emulator(db_path: Path, *extra: str) -> EmulatorProcess:
    return EmulatorProcess(APP_ID, db_path, *extra).start()


@pytest.fixture(scope="session")
def emulator(tmp_path_factory) -> EmulatorHandle:
    handle = start_emulator(tmp_path_factory.mktemp("emulator") / "appservices.sqlite3")
    yield handle
    handle.stop()


@pytest.fixture
def client() -> FormClient:
    """pytest-django's `client`, posting forms with the binding a page rendered now carries."""
    return FormClient()


@pytest.fixture(autouse=True)
def _point_keyadmin_at_emulator(request, settings):
    """Every test's keyadmin talks to the session's local server, with no faults left over."""
    if "emulator" not in request.fixturenames and not request.node.get_closest_marker("browser"):
        point_keyadmin_at(settings, "http://127.0.0.1:9")  # nothing listens: fail loudly
        yield
        return
    emulator = request.getfixturevalue("emulator")
    point_keyadmin_at(settings, emulator.url)
    yield
    emulator.clear_faults()
    emulator.set_latency(0)


@pytest.fixture(autouse=True)
def _empty_cache():
    """Counters kept in Django's cache (sampled audit refusals) start at zero in every test."""
    from django.core.cache import cache

    cache.clear()


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
