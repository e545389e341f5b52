"""Acting for a customer over HTTP, against a local App Services server trusting an HS256 key."""

from __future__ import annotations

import logging
import time
from types import SimpleNamespace

import pytest

from keyadmin.appservices import AppServices, forget_locations
from keyadmin.appservices import connection as connection_module
from keyadmin.keys.guards import binding_claims, check_binding, form_binding
from keyadmin.models import AuditEvent
from tests.keys.actfor_support import (
    END_URL,
    SECRET,
    act_for,
    act_for_app,
    customer_id,
    still_valid,
    stored_refresh_token,
)
from tests.support import (
    HTMX,
    KEYS_URL,
    SIGNIN_URL,
    create_key,
    holds_jwt,
    key_url,
    row_post,
    sign_in_staff,
)


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
    ends_at = client.session["appservices"]["acting"]["ends_at"]
    for row in rows:
        assert row.staff_subject == "sub-sam-support"  # the staff member ...
        assert row.ticket == "SUP-42" and row.app_id == "shop-abcde"  # ... for whom, why, where
        assert row.appservices_user_id == rows[0].appservices_user_id != ""
        assert row.acting_until.timestamp() == ends_at  # ... and within which time box


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
    assert not holds_jwt(text) and SECRET not in text


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
        app_id="shop-abcde",
        user_id="u1",
        label="cus_a",
        acting=SimpleNamespace(customer_id="u1", start_id="s1"),
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


# --- throttling: each start may create an App Services user ---

TOO_OFTEN = "You have started acting for customers too often. Try again in"


def test_act_for_starts_past_the_limit_per_app_are_refused_with_no_request(
    client, on_shop, known_customers, settings
):
    settings.KEYADMIN_ACT_FOR_APP_LIMIT = 2
    sign_in_staff(client)
    for _ in range(2):
        assert act_for(client, "shop", customer_id()).status_code == 302
    on_shop.reset_stats()
    customer = customer_id()

    response = act_for(client, "shop", customer, "SUP-9")

    assert response.status_code == 429 and int(response["Retry-After"]) > 0
    page = response.content.decode()
    assert TOO_OFTEN in page and 'class="banner banner-error" role="alert"' in page
    assert on_shop.request_count() == 0
    row = AuditEvent.objects.get(action="act-for-start", outcome="denied")
    assert (row.detail, row.acting_for, row.ticket) == ("throttled", customer, "SUP-9")
    assert AuditEvent.objects.get(action="throttled").detail.startswith("act-for-start: too many")


def test_the_act_for_limit_per_staff_member_holds_across_apps_and_spares_colleagues(
    client, shop, settings, known_customers
):
    settings.KEYADMIN_APPS = (act_for_app(shop, "shop"), act_for_app(shop, "shop-two"))
    settings.KEYADMIN_ACT_FOR_STAFF_LIMIT = 1
    sign_in_staff(client)
    assert act_for(client, "shop", customer_id()).status_code == 302
    shop.reset_stats()

    assert act_for(client, "shop-two", customer_id()).status_code == 429
    assert shop.request_count() == 0

    sign_in_staff(client, name="Lee Lead")
    assert act_for(client, "shop-two", customer_id()).status_code == 302


def test_refusals_made_locally_and_unanswered_starts_do_not_use_up_the_limit(
    client, on_shop, known_customers, settings
):
    settings.KEYADMIN_ACT_FOR_APP_LIMIT = 1
    sign_in_staff(client)
    for _ in range(3):
        assert act_for(client, "shop", "not-a-customer").status_code == 200
    on_shop.add_fault(route="login", action="status", status=503, times=2)
    for _ in range(2):
        response = act_for(client, "shop", customer_id())
        assert response.status_code == 200 and TOO_OFTEN not in response.content.decode()

    assert act_for(client, "shop", customer_id()).status_code == 302
    on_shop.clear_faults()


# --- a mistyped customer id: deleting the empty user the sign-in created ---

DELETE_USER_URL = "/appservices/act-for/delete-user/"
DELETE_BUTTON = "Delete this empty user and end"


@pytest.fixture
def deleting_shop(shop, settings):
    """The shop app letting staff delete a user their sign-in just created."""
    settings.KEYADMIN_APPS = (act_for_app(shop, "shop", delete_new_users=True),)
    AppServices(settings.KEYADMIN_APPS[0]).hostname()
    shop.reset_stats()
    return shop


def test_the_empty_user_a_mistyped_id_made_is_deleted_with_one_request_and_acting_ends(
    client, deleting_shop
):
    sign_in_staff(client)
    customer = customer_id()
    act_for(client, "shop", customer, "SUP-11")
    hostname, refresh = stored_refresh_token(client)
    page = client.get(KEYS_URL).content.decode()
    assert DELETE_BUTTON in page and "End now" in page
    deleting_shop.reset_stats()

    response = client.post(DELETE_USER_URL, {})

    assert response.status_code == 302 and response["Location"] == SIGNIN_URL
    assert deleting_shop.request_count() == 1  # the delete, with the login's access token
    assert deleting_shop.request_count("user_delete") == 1
    assert "appservices" not in client.session
    assert not still_valid(hostname, refresh)  # the user, and its sessions, are gone
    page = client.get(SIGNIN_URL).content.decode()
    assert f"The empty App Services user made for {customer} in Shop shop was deleted" in page
    assert "Acting for <strong" not in page
    rows = AuditEvent.objects.filter(acting_for=customer).order_by("at", "id")
    assert [(row.action, row.outcome, row.detail) for row in rows][1:] == [
        ("delete-user", "ok", "empty user deleted"),
        ("act-for-end", "ok", "empty user deleted"),
    ]
    assert rows[1].ticket == "SUP-11" and rows[1].appservices_user_id == rows[0].appservices_user_id


def test_an_access_token_kept_too_long_is_refreshed_first(client, deleting_shop, monkeypatch):
    sign_in_staff(client)
    act_for(client, "shop", customer_id())
    deleting_shop.reset_stats()
    monkeypatch.setattr(connection_module, "ACCESS_TOKEN_SECONDS", 0)

    assert client.post(DELETE_USER_URL, {}).status_code == 302

    assert deleting_shop.request_count() == 2
    assert deleting_shop.request_count("user_delete") == 1
    assert AuditEvent.objects.get(action="delete-user").outcome == "ok"


def test_the_empty_user_can_no_longer_be_deleted_once_the_first_minutes_are_over(
    client, deleting_shop, monkeypatch
):
    # By then the customer the id was meant for may have signed up under it.
    sign_in_staff(client)
    customer = customer_id()
    act_for(client, "shop", customer, minutes="30")
    later = time.time() + connection_module.DELETE_NEW_USER_SECONDS + 1
    monkeypatch.setattr(time, "time", lambda: later)
    deleting_shop.reset_stats()

    page = client.get(KEYS_URL).content.decode()
    response = client.post(DELETE_USER_URL, {})

    assert DELETE_BUTTON not in page and "End now" in page
    assert deleting_shop.request_count("user_delete") == 0
    assert response.status_code == 302
    followed = client.get(response["Location"]).content.decode()
    assert "within 10 minutes of it" in followed and "Nothing was deleted" in followed
    row = AuditEvent.objects.get(action="delete-user")
    assert (row.outcome, row.acting_for) == ("denied", customer)


def test_only_a_sign_in_that_created_its_user_keeps_an_access_token(
    client, deleting_shop, known_customers
):
    sign_in_staff(client)
    act_for(client, "shop", customer_id())

    assert "access" not in client.session["appservices"]
    assert DELETE_BUTTON not in client.get(KEYS_URL).content.decode()
    deleting_shop.reset_stats()
    response = client.post(DELETE_USER_URL, {})

    assert response.status_code == 302 and response["Location"] == KEYS_URL
    assert deleting_shop.request_count() == 0
    assert "appservices" in client.session
    assert "Nothing was deleted" in client.get(KEYS_URL).content.decode()
    assert AuditEvent.objects.get(action="delete-user").detail == "not-a-new-user"


def test_an_app_that_does_not_allow_it_offers_no_delete(client, on_shop):
    sign_in_staff(client)
    act_for(client, "shop", customer_id())
    page = client.get(KEYS_URL).content.decode()
    assert "a new, empty user was created" in page and DELETE_BUTTON not in page
    on_shop.reset_stats()

    client.post(DELETE_USER_URL, {})

    assert on_shop.request_count() == 0
    assert AuditEvent.objects.get(action="delete-user").outcome == "denied"


def test_a_user_given_a_key_through_keyadmin_is_not_deleted(client, deleting_shop):
    sign_in_staff(client)
    act_for(client, "shop", customer_id())
    create_key(client, "made-here")
    assert DELETE_BUTTON not in client.get(KEYS_URL).content.decode()
    deleting_shop.reset_stats()

    client.post(DELETE_USER_URL, {})

    assert deleting_shop.request_count() == 0
    assert "A key was created for this user through keyadmin" in (
        client.get(KEYS_URL).content.decode()
    )
    assert AuditEvent.objects.get(action="delete-user").detail == "keys-created"


def test_a_delete_form_from_another_customer_is_refused(client, deleting_shop):
    sign_in_staff(client)
    act_for(client, "shop", customer_id())
    page = client.get(KEYS_URL).content.decode()
    binding = page.split('name="bound_to" value="', 1)[1].split('"', 1)[0]
    act_for(client, "shop", customer_id())  # another new customer, in another tab
    deleting_shop.reset_stats()

    response = client.post(DELETE_USER_URL, {"bound_to": binding})

    assert response.status_code == 409
    assert deleting_shop.request_count() == 0
    assert "appservices" in client.session
    assert AuditEvent.objects.get(action="delete-user").outcome == "denied"


# --- where the app lives: learnt with the form, so the start costs only the login ---


@pytest.fixture
def fresh_process(shop, settings):
    """The shop app in a process that has not yet looked up where it lives."""
    settings.KEYADMIN_APPS = (act_for_app(shop, "shop"),)
    forget_locations()
    shop.reset_stats()
    yield shop
    forget_locations()


def test_the_first_start_in_a_process_costs_one_request_as_every_other(
    client, fresh_process, known_customers
):
    sign_in_staff(client, "viewer", "operator")
    client.get(SIGNIN_URL)
    assert fresh_process.request_count() == 0  # no form, nothing looked up

    sign_in_staff(client)
    client.get(SIGNIN_URL)
    assert fresh_process.request_count("location") == fresh_process.request_count() == 1
    client.get(SIGNIN_URL)
    assert fresh_process.request_count() == 1  # known now: later views ask nothing
    fresh_process.reset_stats()

    assert act_for(client, "shop", customer_id()).status_code == 302
    assert fresh_process.request_count() == fresh_process.request_count("login") == 1


def test_a_look_up_that_fails_leaves_the_page_alone_and_is_not_repeated_on_every_view(
    client, fresh_process, known_customers
):
    fresh_process.add_fault(route="location", action="status", status=503, times=1)
    sign_in_staff(client)

    assert client.get(SIGNIN_URL).status_code == 200
    assert client.get(SIGNIN_URL).status_code == 200
    assert fresh_process.request_count() == 1

    assert act_for(client, "shop", customer_id()).status_code == 302  # looked up at the start
    assert fresh_process.request_count() == 3


# --- an attacker's view of the flow ---


def test_acting_ends_on_the_next_request_once_the_act_for_role_on_that_app_is_gone(
    client, on_shop, known_customers, settings
):
    sign_in_staff(client)
    customer = customer_id()
    act_for(client, "shop", customer, "SUP-21")
    hostname, refresh = stored_refresh_token(client)
    settings.KEYADMIN_APPS = (act_for_app(on_shop, "shop", act_for_groups=("support-leads",)),)

    response = client.get(KEYS_URL)

    assert response.status_code == 302 and response["Location"] == SIGNIN_URL
    assert "appservices" not in client.session
    assert not still_valid(hostname, refresh)
    page = client.get(SIGNIN_URL).content.decode()
    assert f"You may no longer act for customers in Shop shop: acting for {customer}" in page
    end = AuditEvent.objects.get(action="act-for-end")
    assert (end.acting_for, end.ticket) == (customer, "SUP-21")
    assert end.detail == "act-for role withdrawn"


@pytest.mark.parametrize(
    ("customer", "ticket", "reason"),
    [
        ("cus_alice", "SUP-\u0661\u0662", "ticket-pattern"),  # Arabic-Indic digits pass \d
        ("cus_alice", "SUP-\uff11\uff12", "ticket-pattern"),  # fullwidth digits, too
        ("cus_\u0430lice", "SUP-1", "customer-pattern"),  # a Cyrillic a, with \w
    ],
)
def test_patterns_match_ascii_classes_only_so_lookalikes_cannot_pass(
    client, shop, settings, customer, ticket, reason
):
    settings.KEYADMIN_APPS = (act_for_app(shop, "shop", customer_pattern=r"^cus_\w+$"),)
    shop.reset_stats()
    sign_in_staff(client)

    response = act_for(client, "shop", customer, ticket)

    assert response.status_code == 200 and shop.request_count() == 0
    assert AuditEvent.objects.get(action="act-for-start").detail == reason


def test_a_form_from_an_earlier_session_for_the_same_customer_is_refused(
    client, on_shop, known_customers
):
    sign_in_staff(client)
    customer = customer_id()
    act_for(client, "shop", customer, "SUP-1")
    key_id = create_key(client, "old-page")
    page = client.get(KEYS_URL).content.decode()
    binding = page.split('name="bound_to" value="', 1)[1].split('"', 1)[0]
    client.post(END_URL, {})
    act_for(client, "shop", customer, "SUP-2")  # the same customer, under another ticket
    on_shop.reset_stats()

    response = client.post(
        key_url(key_id, "delete"), {**row_post(key_id, "old-page"), "bound_to": binding}
    )

    assert response.status_code == 409
    assert on_shop.request_count() == 0
    assert AuditEvent.objects.filter(action="delete", outcome="ok").count() == 0


def test_end_now_from_a_tab_acting_for_another_customer_ends_nothing(
    client, on_shop, known_customers
):
    sign_in_staff(client)
    act_for(client, "shop", customer_id())
    page = client.get(KEYS_URL).content.decode()
    binding = page.split('name="bound_to" value="', 1)[1].split('"', 1)[0]
    second = customer_id()
    act_for(client, "shop", second)

    client.post(END_URL, {"bound_to": binding})

    assert client.session["appservices"]["acting"]["customer_id"] == second
    assert AuditEvent.objects.filter(action="act-for-end", acting_for=second).count() == 0


def test_signing_out_of_keyadmin_while_acting_ends_acting_with_its_own_row(
    client, on_shop, known_customers
):
    sign_in_staff(client)
    customer = customer_id()
    act_for(client, "shop", customer, "SUP-23")
    hostname, refresh = stored_refresh_token(client)

    client.post("/sign-out/", {})

    assert not still_valid(hostname, refresh)
    end = AuditEvent.objects.get(action="act-for-end")
    assert (end.acting_for, end.ticket, end.app_id, end.detail) == (
        customer,
        "SUP-23",
        "shop-abcde",
        "staff signed out",
    )


def test_no_customer_id_or_ticket_in_logs_when_refused_throttled_or_deleted(
    client, shop, settings, caplog
):
    settings.KEYADMIN_APPS = (act_for_app(shop, "shop", delete_new_users=True),)
    settings.KEYADMIN_ACT_FOR_APP_LIMIT = 1
    caplog.set_level(logging.DEBUG)
    sign_in_staff(client)
    customer = customer_id()

    act_for(client, "shop", customer + "!", "SUP-4242")  # refused: pattern
    act_for(client, "shop", customer, "SUP-4242")
    client.post("/appservices/act-for/delete-user/", {})
    act_for(client, "shop", customer, "SUP-4242")  # refused: throttled

    assert AuditEvent.objects.filter(acting_for=customer).count() >= 4
    text = "\n".join(record.getMessage() for record in caplog.records)
    assert customer not in text
    assert "SUP-4242" not in text


def test_the_role_on_one_app_does_not_open_another(client, shop, settings, known_customers):
    settings.KEYADMIN_APPS = (
        act_for_app(shop, "locked", act_for_groups=("support-leads",)),
        act_for_app(shop, "open"),
    )
    shop.reset_stats()
    sign_in_staff(client)  # act_for everywhere, but not in support-leads

    page = client.get(SIGNIN_URL + "?app=locked").content.decode()
    act_for_form = page.split('id="act-for-heading"', 1)[1].split("</form>", 1)[0]
    assert 'name="app" value="open"' in act_for_form  # the form offered is the open app's
    refused = act_for(client, "locked", customer_id())  # the form's app field, altered

    assert refused.status_code == 403 and "appservices" not in client.session
    assert shop.request_count("login") == 0
    assert act_for(client, "open", customer_id()).status_code == 302


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
