"""What the staff's actions add to /metrics: counts by route, action and scope, and never a name.

The scrape after a whole support session (sign in, connect, create a key, act for a customer,
create a key for them, end) holds none of the values that session handled.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families

from keyadmin.appservices import AppServices
from keyadmin.appservices import connection as connection_module
from keyadmin.models import AuditEvent, Staff
from tests.keys.actfor_support import (
    END_URL,
    act_for,
    act_for_app,
    customer_id,
    stored_refresh_token,
)
from tests.support import CREATE_URL, HTMX, SIGNIN_URL, connect, sign_in_staff

SECRET_IN_PANEL = re.compile(r'<code id="secret-value-([0-9a-f]{24})"[^>]*>([^<]+)</code>')
STAFF_NAME = "Quentin Metricsworth"


@pytest.fixture
def on_shop(shop, settings, emulator):
    settings.KEYADMIN_APPS = (*settings.KEYADMIN_APPS, act_for_app(shop, "shop"))
    AppServices(settings.KEYADMIN_APPS[-1]).hostname()
    return shop


def sample_values(client) -> dict[tuple[str, tuple], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def count(client, name: str, **labels: str) -> float:
    return sum(
        value
        for (found, found_labels), value in sample_values(client).items()
        if found == name and labels.items() <= dict(found_labels).items()
    )


def active_act_for(client) -> float:
    return count(client, "keyadmin_act_for_active_connections")


def create(client, name: str) -> tuple[str, str]:
    """Create a key; its id and secret, from the one answer that shows the secret."""
    response = client.post(CREATE_URL, {"name": name}, headers=HTMX)
    assert response.status_code == 200
    (found,) = SECRET_IN_PANEL.findall(response.content.decode())
    return found[0], found[1].strip()


def test_a_whole_support_session_leaves_no_secret_id_or_name_in_the_metrics(
    client, emulator, user_credentials, on_shop, monkeypatch
):
    monkeypatch.setattr(connection_module, "NEW_USER_SECONDS", -1)
    sign_in_staff(client, name=STAFF_NAME)
    email, password = user_credentials
    connect(client, user_credentials)
    handled = [email, password, *stored_refresh_token(client)[1:]]
    key_id, secret = create(client, "metrics-own-key-name")
    handled += [key_id, secret, "metrics-own-key-name"]

    customer, ticket = customer_id(), "SUP-8675309"
    assert act_for(client, "shop", customer, ticket).status_code == 302
    handled += [customer, ticket, *stored_refresh_token(client)[1:]]
    customer_key_id, customer_secret = create(client, "metrics-customer-key-name")
    handled += [customer_key_id, customer_secret, "metrics-customer-key-name"]
    assert active_act_for(client) == 1
    client.post(END_URL, {})
    assert active_act_for(client) == 0

    scrape = client.get("/metrics").content.decode()
    assert "keyadmin_upstream_requests_total" in scrape
    staff = Staff.objects.get(display_name=STAFF_NAME)
    handled += [STAFF_NAME, staff.subject, staff.email, on_shop.app_id, emulator.app_id]
    handled += [value for value in client.cookies.values() if value]
    for value in handled:
        assert value and str(value) not in scrape, "a handled value is in the metrics"
    assert "@" not in scrape


def test_actions_are_counted_by_route_upstream_route_and_audit_action(
    client, emulator, user_credentials
):
    sign_in_staff(client)
    connect(client, user_credentials)
    creates = count(client, "keyadmin_http_requests_total", route="keyadmin:key-create")
    upstream = count(
        client, "keyadmin_upstream_requests_total", route="POST /auth/api_keys", outcome="201"
    )
    audited = count(client, "keyadmin_audit_writes_total", action="create", outcome="ok")

    create(client, "counted")

    assert count(client, "keyadmin_http_requests_total", route="keyadmin:key-create") == (
        creates + 1
    )
    assert (
        count(
            client, "keyadmin_upstream_requests_total", route="POST /auth/api_keys", outcome="201"
        )
        == upstream + 1
    )
    assert count(client, "keyadmin_audit_writes_total", action="create", outcome="ok") == (
        audited + 1
    )


def test_act_for_connections_count_until_their_time_box_ends(
    client, emulator, on_shop, monkeypatch
):
    monkeypatch.setattr(connection_module, "NEW_USER_SECONDS", -1)
    sign_in_staff(client)
    act_for(client, "shop", customer_id(), minutes="1")
    assert active_act_for(client) == 1
    start = AuditEvent.objects.get(action="act-for-start", outcome="ok")

    # The row is append-only: the clock moves instead, past the one-minute box.
    monkeypatch.setattr(
        "keyadmin.metrics_views.timezone.now", lambda: start.at + timedelta(seconds=61)
    )

    assert active_act_for(client) == 0


def test_signing_out_while_acting_ends_the_connection(client, emulator, on_shop, monkeypatch):
    monkeypatch.setattr(connection_module, "NEW_USER_SECONDS", -1)
    sign_in_staff(client)
    act_for(client, "shop", customer_id())
    other = type(client)()
    sign_in_staff(other, name="Other Staff")
    act_for(other, "shop", customer_id())
    assert active_act_for(client) == 2

    client.post("/sign-out/")

    assert active_act_for(other) == 1


def test_throttle_blocks_and_refusals_are_counted_by_scope(
    client, emulator, user_credentials, settings
):
    settings.KEYADMIN_SIGNIN_TARGET_LIMIT = 2
    sign_in_staff(client)
    email, _password = user_credentials
    blocks = count(client, "keyadmin_signin_throttle_blocks_total", scope="target")
    refusals = count(client, "keyadmin_signin_throttle_refusals_total", scope="target")

    for n in range(5):
        client.post(SIGNIN_URL, {"provider": "local-userpass", "email": email, "password": f"x{n}"})

    assert count(client, "keyadmin_signin_throttle_blocks_total", scope="target") == blocks + 1
    assert count(client, "keyadmin_signin_throttle_refusals_total", scope="target") == (
        refusals + 3
    )
