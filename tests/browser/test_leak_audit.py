"""Leak audit, end to end.

A staff member signs in to App Services in the browser, creates keys (htmx, and one plain POST),
goes Back and reloads; then a 500 is induced inside the create view, after App Services handed
over a secret, with DEBUG off and ADMINS set, so Django e-mails an error report (also the HTML
one with every frame's local variables, the worst case). DEBUG logging is on for keyadmin,
requests, urllib3 and django throughout. Then every secret is searched for in: the database,
the session rows, the cache, all log output, the error reports, localStorage and
sessionStorage, and the page after Back and after a reload. Nothing may be found.
"""

from __future__ import annotations

import logging
import pickle
import re
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.conf import settings as django_settings
from django.contrib.sessions.models import Session
from django.core.cache import caches
from django.db import connection
from django.utils.log import AdminEmailHandler
from playwright.sync_api import expect

from keyadmin import appservices, audit
from tests.browser.support import (
    KEYS_URL,
    SIGNIN_URL,
    STORAGE,
    create_button,
    create_in_browser,
    row,
    secret_panel,
)
from tests.support import holds_jwt

LOGGERS = ("keyadmin", "requests", "urllib3", "django", "django.request")
SECRET_IN_PAGE = re.compile(r'<code id="secret-value-[0-9a-f]{24}"[^>]*>([^<]+)</code>')


def _database_bytes() -> bytes:
    """What the database holds: every row as text, plus the SQLite files' own bytes."""
    rows: list[str] = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            name = connection.ops.quote_name(table)  # from the catalogue, quoted
            cursor.execute(f"SELECT * FROM {name}")  # noqa: S608
            rows.extend(repr(row) for row in cursor.fetchall())
    found = "\n".join(rows).encode()
    if connection.vendor == "sqlite":
        connection.close()
        path = Path(connection.settings_dict["NAME"])
        for part in (path, Path(f"{path}-wal"), Path(f"{path}-journal")):
            if part.exists():
                found += part.read_bytes()
    return found


def _cache_bytes() -> bytes:
    found = b""
    for alias in caches:
        for key, value in list(getattr(caches[alias], "_cache", {}).items()):
            found += str(key).encode() + (
                value if isinstance(value, bytes) else pickle.dumps(value)
            )
    return found


def _session_cookies(page) -> list[str]:
    name = django_settings.SESSION_COOKIE_NAME
    return [c["value"] for c in page.context.cookies() if c["name"] == name]


@pytest.fixture
def error_reports(settings, mailoutbox):
    """Django's error e-mails, plus the HTML report with local variables (not sent by default)."""
    settings.DEBUG = False
    settings.ADMINS = [("Operations", "ops@example.com")]
    handler = AdminEmailHandler(include_html=True)
    logger = logging.getLogger("django.request")
    logger.addHandler(handler)
    yield mailoutbox
    logger.removeHandler(handler)


def test_no_secret_is_left_anywhere(
    staff_page,
    live_server,
    emulator,
    user_credentials,
    caplog,
    capfd,
    error_reports,
    monkeypatch,
    problems,
):
    for name in LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
    email, password = user_credentials
    page = staff_page
    staff_cookies = _session_cookies(page)

    # Sign in to App Services through the page: the password passes through the browser.
    page.goto(live_server.url + SIGNIN_URL)
    page.get_by_role("textbox", name="Email").fill(email)
    page.get_by_role("textbox", name="Password").fill(password)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("heading", level=1, name="API keys")).to_be_visible()
    [cookie] = _session_cookies(page)
    stored = Session.objects.get(session_key=cookie).get_decoded()["appservices"]["refresh"]
    refresh_token = Fernet(django_settings.KEYADMIN_TOKEN_KEY).decrypt(stored.encode()).decode()

    # Keys created with htmx, and one with a plain POST (the no-JavaScript secret page).
    key_secrets = [create_in_browser(page, f"audit-{number}") for number in range(3)]
    assert not any(secret in page.evaluate(STORAGE) for secret in key_secrets)
    csrf = next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
    binding = page.locator('#create-form input[name="bound_to"]').get_attribute("value")
    plain = page.request.post(
        live_server.url + "/keys/new/",
        form={"name": "audit-plain", "csrfmiddlewaretoken": csrf, "bound_to": binding},
        headers={"X-CSRFToken": csrf},
    )
    assert plain.status == 200
    key_secrets += SECRET_IN_PAGE.findall(plain.text())
    assert len(key_secrets) == 4

    # Away, Back, reload: the secrets are gone from the page and never reach web storage.
    row(page, "audit-0").get_by_role("link", name="audit-0", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Key “audit-0”")
    page.go_back()
    expect(row(page, "audit-0")).to_be_visible()
    after_back = page.content() + page.evaluate(STORAGE)
    expect(secret_panel(page)).to_have_count(0)
    page.reload()
    expect(row(page, "audit-plain")).to_be_visible()
    after_reload = page.content() + page.evaluate(STORAGE)

    # A 500 inside the create view, after App Services handed over the new key's secret.
    lost: list[str] = []
    real_create, real_record = appservices.UserSession.create_api_key, audit.record

    def create_and_keep(self, name):
        created = real_create(self, name)
        lost.append(created.key)  # the test's own copy, to search for
        return created

    def failing_record(request, action, outcome, **fields):
        if action == "create" and outcome == audit.OK:
            raise RuntimeError("audit store unavailable (induced by the leak audit)")
        return real_record(request, action, outcome, **fields)

    monkeypatch.setattr(appservices.UserSession, "create_api_key", create_and_keep)
    monkeypatch.setattr(audit, "record", failing_record)
    problems.expect("500")  # the browser's "Failed to load resource" for the failed POST
    problems.expect("500")  # htmx's own "Response Status Error Code 500"
    page.get_by_label("Key name").fill("audit-boom")
    create_button(page).click()
    expect(page.locator("#notices")).to_contain_text("Something went wrong in keyadmin")
    expect(secret_panel(page)).to_have_count(0)
    assert len(lost) == 1
    monkeypatch.undo()
    after_error = page.content() + page.evaluate(STORAGE)

    # Everything the server and the browser kept.
    reports = [
        "\n".join(
            [message.subject, message.body]
            + [str(content) for content, _ in getattr(message, "alternatives", [])]
        )
        for message in error_reports
    ]
    assert reports, "Django sent no error report"
    assert any("RuntimeError" in r and "induced by the leak audit" in r for r in reports)
    assert any("Local Vars" in r for r in reports), "no HTML report"
    captured = capfd.readouterr()
    logs = caplog.text + captured.out + captured.err
    assert "api_keys" in logs, "DEBUG logging was not captured"
    sessions = "".join(s.session_data + str(s.get_decoded()) for s in Session.objects.all())
    database = _database_bytes()
    assert b"audit-plain" in database, "the database search sees what was written"
    cache = _cache_bytes()
    browser = after_back + after_reload + after_error

    everything = key_secrets + lost + [refresh_token, password]
    assert all(len(secret) >= 12 for secret in everything)
    for secret in everything:
        assert secret not in logs
        assert secret not in sessions
        assert secret.encode() not in database
        assert secret.encode() not in cache
        assert all(secret not in report for report in reports)
        assert secret not in browser
    for cookie in [*staff_cookies, *_session_cookies(page)]:  # the session ids themselves
        assert cookie not in logs
        assert all(cookie not in report for report in reports)
        assert cookie not in browser
    csrf_secret = next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
    assert all(csrf_secret not in report for report in reports)  # META["CSRF_COOKIE"]
    for text in [logs, *reports, browser]:
        assert not holds_jwt(text), "a JWT (App Services token) in clear"
    assert page.url == live_server.url + KEYS_URL
