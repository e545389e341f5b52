"""Acting for a customer over HTTP, against a local App Services server trusting an HS256 key."""

from __future__ import annotations

import logging
import time
from types import SimpleNamespace

import pytest

from keyadmin.appservices import AppServices
from keyadmin.appservices import connection as connection_module
from keyadmin.keys.guards import binding_claims, check_binding, form_binding
from keyadmin.models import AuditEvent
from tests.keys.actfor_support import (
    END_URL,
    SECRET,
    act_for,
    act_for_app,
    customer_id,
    start_customer_server,
    still_valid,
    stored_refresh_token,
)
from tests.support import (
    HTMX,
    KEYS_URL,
    SIGNIN_URL,
    create_key,
    key_url,
    row_post,
    sign_in_staff,
)


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    server = start_customer_server("shop-abcde", tmp_path_factory.mktemp("shop") / "db.sqlite3")
    yield server
    server.stop()


@pytest.fixture
def on_shop(shop, settings):
    """The shop app; where it lives is already known, as after the process's first sign-in."""
    settings.KEYADMIN_APPS = (act_for_app(shop, "shop"),)
    AppServices(settings.KEYADMIN_APPS[0]).hostname()
    shop.reset_stats()
    return shop


@pytest.fixture
def known_customers(monkeypatch):
    """Customers acted for in these tests are new users; only the new-user test says so."""
    monkeypatch.setattr(connection_module, "NEW_USER_SECONDS", -1)


def test_the_form_shows_only_to_staff_who_may_act_for_customers(client, on_shop):
    sign_in_staff(client, "viewer", "operator")
    assert "Act for a customer" not in client.get(SIGNIN_URL).content.decode()

    sign_in_staff(client, "viewer", "operator", "act_for", name="Lee Lead")
    page = client.get(SIGNIN_URL).content.decode()
    assert "Act for a customer" in page
    assert 'name="customer_id"' in page and 'value="15"' in page and 'max="30"' in page


def test_staff_act_for_a_customer_with_one_upstream_request_and_manage_their_keys(
    client, on_shop, known_customers
):
    sign_in_staff(client)
    customer = customer_id()

    response = act_for(client, "shop", customer, "SUP-42")

    assert response.status_code == 302 and response["Location"] == KEYS_URL
    assert on_shop.request_count() == 1  # the custom-token login, and nothing else
    assert on_shop.request_count("login") == 1
    page = client.get(KEYS_URL).content.decode()
    assert f'Acting for <strong translate="no">{customer}</strong>' in page
    assert 'ticket <span translate="no">SUP-42</span>' in page
    assert "End now" in page

    key_id = create_key(client, "support-made")
    assert (
        client.post(
            key_url(key_id, "disable"), row_post(key_id, "support-made"), headers=HTMX
        ).status_code
        == 200
    )
    assert (
        client.post(
            key_url(key_id, "enable"), row_post(key_id, "support-made", True), headers=HTMX
        ).status_code
        == 200
    )
    assert (
        client.post(
            key_url(key_id, "delete"), row_post(key_id, "support-made", confirm="1"), headers=HTMX
        ).status_code
        == 200
    )

    rows = AuditEvent.objects.filter(acting_for=customer).order_by("at", "id")
    assert [(row.action, row.outcome) for row in rows] == [
        ("act-for-start", "ok"),
        ("create", "ok"),
        ("disable", "ok"),
        ("enable", "ok"),
        ("delete", "ok"),
    ]
    for row in rows:
        assert row.staff_subject == "sub-sam-support"  # the staff member ...
        assert row.ticket == "SUP-42" and row.app_id == "shop-abcde"  # ... for whom, why, where
        assert row.appservices_user_id == rows[0].appservices_user_id != ""


def test_the_banner_is_on_every_page_while_acting(client, on_shop, known_customers):
    sign_in_staff(client)
    customer = customer_id()
    act_for(client, "shop", customer)
    key_id = create_key(client, "bannered")

    for url in (KEYS_URL, SIGNIN_URL, key_url(key_id), "/audit/"):
        page = client.get(url).content.decode()
        assert f'Acting for <strong translate="no">{customer}</strong>' in page, url
        assert "ends at <time>" in page, url


def test_end_now_revokes_the_customer_session_upstream_and_is_audited(
    client, on_shop, known_customers
):
    sign_in_staff(client)
    customer = customer_id()
    act_for(client, "shop", customer, "SUP-7")
    hostname, refresh = stored_refresh_token(client)
    assert still_valid(hostname, refresh)

    response = client.post(END_URL, {})

    assert response.status_code == 302 and response["Location"] == SIGNIN_URL
    assert "appservices" not in client.session
    assert not still_valid(hostname, refresh)  # App Services refuses it from now on
    page = client.get(SIGNIN_URL).content.decode()
    assert f"You no longer act for {customer}" in page
    assert "Acting for <strong" not in page
    end = AuditEvent.objects.get(action="act-for-end")
    assert (end.acting_for, end.ticket, end.detail) == (customer, "SUP-7", "ended now")


def test_the_end_of_the_time_box_ends_acting_on_the_next_request(
    client, on_shop, known_customers, monkeypatch
):
    sign_in_staff(client)
    customer = customer_id()
    act_for(client, "shop", customer, "SUP-8", minutes="1")
    hostname, refresh = stored_refresh_token(client)
    later = time.time() + 61
    monkeypatch.setattr(time, "time", lambda: later)

    response = client.get(KEYS_URL)

    assert response.status_code == 302 and response["Location"] == SIGNIN_URL
    assert not still_valid(hostname, refresh)
    page = client.get(SIGNIN_URL).content.decode()
    assert f"Your time acting for {customer}" in page and "has ended" in page
    assert AuditEvent.objects.filter(action="act-for-end", detail="time box ended").count() == 1
    client.get(SIGNIN_URL)
    assert AuditEvent.objects.filter(action="act-for-end").count() == 1  # audited once


def test_a_form_from_a_normal_connection_is_refused_while_acting(
    client, on_shop, known_customers, emulator
):
    sign_in_staff(client)
    customer = customer_id()
    act_for(client, "shop", customer)
    key_id = create_key(client, "theirs")
    stale_page = client.get(KEYS_URL).content.decode()
    binding = stale_page.split('name="bound_to" value="', 1)[1].split('"', 1)[0]
    client.post(END_URL, {})
    act_for(client, "shop", customer_id())  # a different customer in the same tab

    response = client.post(
        key_url(key_id, "delete"), {**row_post(key_id, "theirs"), "bound_to": binding}
    )

    assert response.status_code == 409
    assert "Nothing was changed" in response.content.decode()


@pytest.mark.parametrize(
    ("customer", "ticket", "minutes", "reason"),
    [
        ("", "SUP-1", "15", "customer-missing"),
        ("bob", "SUP-1", "15", "customer-pattern"),
        ("cus_a\u200bb", "SUP-1", "15", "customer-invalid"),
        ("cus_alice", "", "15", "ticket-missing"),
        ("cus_alice", "because", "15", "ticket-pattern"),
        ("cus_alice", "SUP-1", "31", "duration-invalid"),
        ("cus_alice", "SUP-1", "0", "duration-invalid"),
    ],
)
def test_each_local_refusal_is_explained_in_place_and_audited_with_no_request(
    client, on_shop, customer, ticket, minutes, reason
):
    sign_in_staff(client)

    response = act_for(client, "shop", customer, ticket, minutes)

    assert response.status_code == 200
    assert 'class="banner banner-error" role="alert"' in response.content.decode()
    assert on_shop.request_count() == 0
    assert "appservices" not in client.session
    row = AuditEvent.objects.get(action="act-for-start")
    assert (row.outcome, row.detail, row.app_id) == ("denied", reason, "shop-abcde")


def test_an_app_that_does_not_allow_acting_refuses_without_a_request(client, shop, settings):
    settings.KEYADMIN_APPS = (act_for_app(shop, "shop", act_for_enabled=False),)
    shop.reset_stats()
    sign_in_staff(client)

    response = act_for(client, "shop", "cus_alice")

    assert "This app does not allow acting for customers." in response.content.decode()
    assert shop.request_count() == 0
    assert AuditEvent.objects.get(action="act-for-start").detail == "act-for-disabled"


def test_without_the_role_acting_is_refused(client, on_shop):
    sign_in_staff(client, "viewer", "operator")

    response = act_for(client, "shop", "cus_alice")

    assert response.status_code == 403
    assert "Acting for a customer needs the act-for role." in response.content.decode()
    assert on_shop.request_count() == 0
    assert AuditEvent.objects.get(action="denied").outcome == "denied"


def test_the_apps_own_act_for_groups_are_checked_on_the_server(client, shop, settings):
    settings.KEYADMIN_APPS = (act_for_app(shop, "shop", act_for_groups=("support-leads",)),)
    shop.reset_stats()
    sign_in_staff(client)  # holds act_for, but is not in support-leads

    assert "Act for a customer" not in client.get(SIGNIN_URL).content.decode()
    response = act_for(client, "shop", "cus_alice")

    assert response.status_code == 403
    assert "its own groups do not include yours" in response.content.decode()
    assert shop.request_count() == 0
    assert AuditEvent.objects.get(action="act-for-start").detail == "act-for-role-on-app"


def test_a_provider_that_refuses_the_token_is_explained(client, shop, settings):
    wrong = act_for_app(shop, "shop")
    settings.KEYADMIN_APPS = (act_for_app(shop, "shop", jwt_audience="another-audience"),)
    assert wrong.jwt_audience == "shop-abcde"
    sign_in_staff(client)
    customer = customer_id()

    response = act_for(client, "shop", customer, "SUP-5")

    assert response.status_code == 200
    assert "Custom JWT provider refused" in response.content.decode()
    assert "appservices" not in client.session
    row = AuditEvent.objects.get(action="act-for-start")
    assert (row.outcome, row.detail) == ("failed", "SignInTokenRefused")
    assert (row.app_id, row.acting_for, row.ticket) == ("shop-abcde", customer, "SUP-5")


def test_a_customer_id_nobody_had_is_reported_as_new(client, on_shop):
    sign_in_staff(client)
    customer = customer_id()

    act_for(client, "shop", customer)

    page = client.get(KEYS_URL).content.decode()
    assert (
        "No App Services user had this id until now: check the id; a new, empty user was "
        "created." in page
    )
    assert "End now" in page
    start = AuditEvent.objects.get(action="act-for-start")
    assert "new user created by this sign-in" in start.detail


def test_no_customer_id_ticket_or_token_in_any_log_line(client, on_shop, known_customers, caplog):
    caplog.set_level(logging.DEBUG)
    sign_in_staff(client)
    customer = customer_id()

    act_for(client, "shop", customer, "SUP-31337")
    create_key(client, "logged")
    client.post(END_URL, {})

    text = "\n".join(record.getMessage() for record in caplog.records)
    assert customer not in text
    assert "SUP-31337" not in text
    assert "eyJ" not in text and SECRET not in text


def test_acting_for_another_customer_ends_the_first_with_its_own_row(
    client, on_shop, known_customers
):
    sign_in_staff(client)
    first, second = customer_id(), customer_id()
    act_for(client, "shop", first, "SUP-1")
    hostname, refresh = stored_refresh_token(client)

    act_for(client, "shop", second, "SUP-2")

    assert not still_valid(hostname, refresh)
    end = AuditEvent.objects.get(action="act-for-end")
    assert (end.acting_for, end.ticket, end.detail) == (first, "SUP-1", "replaced by a sign-in")
    assert client.session["appservices"]["acting"]["customer_id"] == second


def test_the_form_binding_tells_acting_from_a_normal_connection_of_the_same_user():
    """A staff member's own bridge user and a customer could share a user id: never confused."""
    own = SimpleNamespace(app_id="shop-abcde", user_id="u1", label="me", acting=None)
    acting = SimpleNamespace(
        app_id="shop-abcde", user_id="u1", label="cus_a", acting=SimpleNamespace(customer_id="u1")
    )

    assert binding_claims(own) != binding_claims(acting)
    request = SimpleNamespace(
        method="POST", POST={"bound_to": form_binding(own)}, connection=acting
    )
    assert check_binding(request) is not None
    request.POST = {"bound_to": form_binding(acting)}
    assert check_binding(request) is None
    request.connection = own
    assert check_binding(request) is not None


def test_a_key_made_while_acting_says_for_which_ticket_and_the_form_proposes_it(
    client, on_shop, known_customers
):
    sign_in_staff(client)
    act_for(client, "shop", customer_id(), "SUP-77")
    page = client.get(KEYS_URL).content.decode()
    assert 'name="ticket" value="SUP-77"' in page  # the create form proposes the act-for ticket

    key_id = create_key(client, "support-made")

    row = client.get(KEYS_URL).content.decode().split(f'<tr id="key-{key_id}"')[1]
    made = AuditEvent.objects.get(action="create", key_id=key_id)
    assert f"Created by Sam Support on {made.at:%Y-%m-%d} (ticket SUP-77)" in row.split("</tr>")[0]
