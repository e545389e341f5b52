"""An app's `auditor_groups` narrow the audit trail too: rows of an app where a staff member does
not hold the auditor role are neither shown nor exported to them."""

from __future__ import annotations

import pytest

from keyadmin.appsfile import AppConfig
from keyadmin.models import AuditEvent
from tests.audit.test_views import AUDITOR, EXPORT, URL, shown
from tests.sso.fixtures import AUDITORS, STAFF, use_remote_user_mode

PROD_AUDITOR = {**AUDITOR, "OIDC_CLAIM_groups": f"{STAFF},{AUDITORS},prod-auditors"}


def _app(key: str, app_id: str, **changes) -> AppConfig:
    return AppConfig(
        key=key,
        name=key.title(),
        app_id=app_id,
        base_url="https://services.cloud.mongodb.com",
        allowed_hosts=("services.cloud.mongodb.com",),
        environment="production" if key == "prod" else "staging",
        **changes,
    )


@pytest.fixture(autouse=True)
def two_apps(settings):
    use_remote_user_mode(settings)
    settings.KEYADMIN_APPS = (
        _app("prod", "prod-abcde", auditor_groups=("prod-auditors",)),
        _app("staging", "staging-fghij"),
    )
    for app_id, customer in (("prod-abcde", "cus_prod"), ("staging-fghij", "cus_stage"), ("", "")):
        AuditEvent.objects.create(
            action="create", outcome="ok", app_id=app_id, acting_for=customer, ticket="SUP-1"
        )


def _csv(response) -> str:
    return b"".join(response.streaming_content).decode()


def test_an_auditor_outside_an_apps_auditor_groups_sees_none_of_its_rows(client):
    # Attack: production narrows auditing to its own group; any other auditor still read its
    # customers' ids and tickets on /audit/ and in the CSV, and could filter for them.
    page = client.get(URL, {"action": "create"}, **AUDITOR)
    csv_text = _csv(client.get(EXPORT, **AUDITOR))
    filtered = client.get(URL, {"app": "prod-abcde"}, **AUDITOR)

    assert sorted(event.app_id for event in shown(page)) == ["", "staging-fghij"]
    assert "cus_prod" not in page.content.decode()
    assert "cus_prod" not in csv_text and "cus_stage" in csv_text
    assert "cus_prod" not in filtered.content.decode()


def test_an_auditor_in_the_apps_groups_sees_every_row(client):
    page = client.get(URL, {"action": "create"}, **PROD_AUDITOR)

    assert sorted(event.app_id for event in shown(page)) == ["", "prod-abcde", "staging-fghij"]
    assert "cus_prod" in _csv(client.get(EXPORT, **PROD_AUDITOR))
