"""Browser tests: Debian's Chromium driven by pytest-playwright against `live_server`.

Every page load is watched: a console error or a Content-Security-Policy violation fails the test.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.test import Client
from playwright.sync_api import expect

from keyadmin import appservices
from tests.conftest import mark_folder
from tests.sso.staff import configure, staff_user
from tests.support import FormClient, connect

ROOT = Path(__file__).resolve().parents[2]
AXE_SOURCE = ROOT / "node_modules" / "axe-core" / "axe.min.js"

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
    "--disable-default-apps",
]


def pytest_collection_modifyitems(items):
    mark_folder(items, Path(__file__).parent, pytest.mark.browser)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {
        **browser_type_launch_args,
        "headless": True,
        # Playwright turns the back/forward cache off; real Chromium has it on, and the secret
        # panel's pagehide/pageshow handling is only exercised with it (test_secret_storage.py).
        "ignore_default_args": ["--disable-back-forward-cache"],
        "args": CHROMIUM_ARGS,
        "executable_path": os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"),
    }


@pytest.fixture
def browser_context_args(browser_context_args):
    # The clipboard works only with permission; tests that check the refusal path revoke it.
    return {**browser_context_args, "permissions": ["clipboard-read", "clipboard-write"]}


# Waits end as soon as the page is right; the limit only matters when it never is. 10 s, not
# Playwright's 5 s for `expect`: a 5 s wait timed out twice, unexplained, while load tests ran
# on the same 2 cores. Actions get the same instead of 30 s, so a failure is quick to report.
TIMEOUT_MS = 10_000
expect.set_options(timeout=TIMEOUT_MS)


@pytest.fixture
def context(context):
    context.set_default_timeout(TIMEOUT_MS)
    return context


@pytest.fixture(autouse=True)
def _fresh_location_cache():
    appservices.forget_locations()


class PageProblems:
    """Console errors (CSP violations are logged as such) and uncaught page errors."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.expected: list[str] = []

    def watch(self, page) -> None:
        """Watch one more page (a second tab, a context of the test's own)."""
        page.on(
            "console",
            lambda message: message.type == "error" and self.errors.append(message.text),
        )
        page.on("pageerror", lambda error: self.errors.append(f"page error: {error}"))

    def expect(self, text: str) -> None:
        """One console error containing `text` is expected (e.g. the 404 a test asks for)."""
        self.expected.append(text)

    def unexpected(self) -> list[str]:
        left = list(self.errors)
        for text in self.expected:
            match = next((error for error in left if text in error), None)
            assert match is not None, f"expected a console error containing {text!r}: {left}"
            left.remove(match)
        return left


@pytest.fixture
def problems(page) -> PageProblems:
    """Console errors and CSP violations seen during the test; the test fails if any."""
    seen = PageProblems()
    seen.watch(page)
    yield seen
    assert seen.unexpected() == [], f"console errors or CSP violations: {seen.unexpected()}"


@pytest.fixture(autouse=True)
def _every_page_is_watched(request):
    """No browser test can forget `problems`: any test with a `page` gets it."""
    if "page" in request.fixturenames:
        request.getfixturevalue("problems")


def give_session(context, live_server, client: Client) -> None:
    """Hand the Django test client's session cookie to a browser context."""
    cookie = client.cookies[django_settings.SESSION_COOKIE_NAME]
    context.add_cookies(
        [
            {
                "name": django_settings.SESSION_COOKIE_NAME,
                "value": cookie.value,
                "url": live_server.url,
                "httpOnly": True,
            }
        ]
    )


@pytest.fixture
def staff_client(live_server, settings, transactional_db) -> Client:
    """A test client signed in as a staff member holding every role (tests/sso/staff.py).

    pytest-django's `settings` also applies to `live_server`: it runs in this process.
    """
    configure(settings)
    client = FormClient()  # its posts carry the form binding, as the pages' forms do
    client.force_login(staff_user())
    return client


@pytest.fixture
def staff_page(page, live_server, staff_client, problems):
    """A page whose browser is signed in to keyadmin as a staff member with every role."""
    give_session(page.context, live_server, staff_client)
    return page


@pytest.fixture
def connected_client(staff_client, user_credentials) -> Client:
    """The staff client, also signed in to App Services as `user_credentials` (no keys yet)."""
    connect(staff_client, user_credentials)
    return staff_client


@pytest.fixture
def keys_page(page, live_server, connected_client, problems):
    """A page signed in as staff and connected to App Services; not loaded yet.

    Seed keys first with `create_key(connected_client, name)`, then `open_keys(page, live_server)`.
    """
    give_session(page.context, live_server, connected_client)
    return page


@functools.cache
def _axe_source() -> str:
    return AXE_SOURCE.read_text()


@pytest.fixture
def axe(page):
    """Run axe-core on the current page; return the violations (rule id and the nodes' HTML)."""

    def run(context: str | None = None) -> list[dict]:
        # evaluate() runs through the DevTools protocol, so the page's CSP (script-src 'self')
        # does not block it; test_watchers.py checks that axe then really finds violations.
        if not page.evaluate("typeof window.axe === 'object'"):
            page.evaluate(_axe_source())
        result = page.evaluate(
            "async (ctx) => await axe.run(ctx || document, {resultTypes: ['violations']})",
            context,
        )
        return [
            {"id": v["id"], "help": v["help"], "nodes": [n["html"] for n in v["nodes"]]}
            for v in result["violations"]
        ]

    return run
