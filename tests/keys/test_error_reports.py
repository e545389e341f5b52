"""Django's error report for a 500 in the create view holds no secret (the browser-free half of
tests/browser/test_leak_audit.py): not the new key's secret, the refresh token, the session
cookie or the CSRF secret, in the plain e-mail nor in the HTML one with local variables."""

from __future__ import annotations

import logging

import pytest
from cryptography.fernet import Fernet
from django.conf import settings as django_settings
from django.utils.log import AdminEmailHandler

from keyadmin import appservices, audit
from tests.support import CREATE_URL, HTMX, FormClient, connected, holds_jwt


@pytest.mark.parametrize("htmx", [True, False], ids=["htmx", "plain"])
def test_a_500_after_the_secret_arrived_reports_no_secret(
    emulator, user_credentials, settings, mailoutbox, monkeypatch, htmx
):
    settings.DEBUG = False
    settings.ADMINS = [("Operations", "ops@example.com")]
    handler = AdminEmailHandler(include_html=True)  # the worst case: every frame's locals
    logging.getLogger("django.request").addHandler(handler)
    client = connected(FormClient(raise_request_exception=False), user_credentials)
    client.get("/keys/")  # the CSRF cookie, as a browser would hold it
    stored = client.session["appservices"]["refresh"]
    refresh_token = Fernet(django_settings.KEYADMIN_TOKEN_KEY).decrypt(stored.encode()).decode()
    lost: list[str] = []
    real_create, real_record = appservices.UserSession.create_api_key, audit.record

    def create_and_keep(self, name):
        created = real_create(self, name)
        lost.append(created.key)
        return created

    def failing_record(request, action, outcome, **fields):
        if action == "create" and outcome == audit.OK:
            raise RuntimeError("audit store unavailable (induced)")
        return real_record(request, action, outcome, **fields)

    monkeypatch.setattr(appservices.UserSession, "create_api_key", create_and_keep)
    monkeypatch.setattr(audit, "record", failing_record)
    try:
        response = client.post(CREATE_URL, {"name": "boom"}, headers=HTMX if htmx else {})
    finally:
        logging.getLogger("django.request").removeHandler(handler)

    assert response.status_code == 500
    assert "Something went wrong in keyadmin" in response.content.decode()
    assert len(lost) == 1 and lost[0] not in response.content.decode()
    reports = [
        "\n".join([m.subject, m.body, *(str(c) for c, _ in getattr(m, "alternatives", []))])
        for m in mailoutbox
    ]
    assert any("induced" in r and "Local Vars" in r for r in reports), "no HTML report"
    cookies = [client.cookies[name].value for name in ("sessionid", "csrftoken")]
    user_password = user_credentials[1]
    for secret in [lost[0], refresh_token, user_password, *cookies]:
        assert all(secret not in report for report in reports), secret[:6]
    assert not any(holds_jwt(report) for report in reports)
