"""Attacks on acting for a customer (review of issue 12): each test is a hole that was open."""

from __future__ import annotations

import html
import time
from datetime import timedelta

from django.contrib.sessions.models import Session
from django.test import Client
from django.utils import timezone

from keyadmin import appservices
from keyadmin.appservices import UserSession
from keyadmin.appservices import client as appservices_client
from keyadmin.models import AuditEvent
from keyadmin.sso import actfor
from keyadmin.sso.session import end_expired_sessions
from keyadmin.sso.staff import staff_of
from tests.keys.actfor_support import (
    SECRET,
    act_for,
    act_for_app,
    customer_id,
    still_valid,
    stored_refresh_token,
)
from tests.sso.staff import staff_user
from tests.support import KEYS_URL, SIGNIN_URL, FormClient, sign_in_staff


def test_turning_acting_off_on_an_app_ends_the_sessions_already_acting_there(
    client, on_shop, known_customers, settings
):
    # An administrator switches act_for_enabled off (an incident, a provider found too open):
    # a session started before must not go on acting for the customer for the rest of its box.
    sign_in_staff(client)
    customer = customer_id()
    act_for(client, "shop", customer, "SUP-31")
    hostname, refresh = stored_refresh_token(client)
    settings.KEYADMIN_APPS = (act_for_app(on_shop, "shop", act_for_enabled=False),)

    response = client.get(KEYS_URL)

    assert response.status_code == 302 and response["Location"] == SIGNIN_URL
    assert "appservices" not in client.session
    assert not still_valid(hostname, refresh)
    end = AuditEvent.objects.get(action="act-for-end")
    assert (end.acting_for, end.ticket) == (customer, "SUP-31")
    assert end.detail == "act-for turned off on the app"


def test_a_page_not_found_while_acting_still_shows_the_banner(client, on_shop, known_customers):
    # "A banner on every page": a mistyped address must not look like a normal session.
    sign_in_staff(client)
    customer = customer_id()
    act_for(client, "shop", customer)

    response = client.get("/no-such-page/")

    assert response.status_code == 404
    page = response.content.decode()
    assert f'Acting for <strong translate="no">{customer}</strong>' in page
    assert "End now" in page


def _object_id(created: float) -> str:
    return f"{int(created):08x}" + "0" * 16


def test_a_user_the_customer_made_seconds_before_the_sign_in_is_not_called_new(
    client, on_shop, settings, monkeypatch
):
    # The customer signed up 8 s before support acted for them: their user (and whatever they
    # put in it) is not an empty user this sign-in made, and must not be offered for deletion.
    settings.KEYADMIN_APPS = (act_for_app(on_shop, "shop", delete_new_users=True),)
    customer_made = time.time() - 8

    def login(self, provider, credentials):
        return appservices.Tokens(
            access_token="a",
            refresh_token="r",
            user_id=_object_id(customer_made),
            device_id="0" * 24,
            hostname=on_shop.url,
        )

    monkeypatch.setattr(appservices.AppServices, "login", login)
    sign_in_staff(client)

    act_for(client, "shop", customer_id())

    assert client.session["appservices"]["acting"]["new_user"] is False
    assert "access" not in client.session["appservices"]
    start = AuditEvent.objects.get(action="act-for-start", outcome="ok")
    assert "new user" not in start.detail


def test_a_user_made_during_the_sign_in_is_still_called_new(client, on_shop, settings, monkeypatch):
    settings.KEYADMIN_APPS = (act_for_app(on_shop, "shop", delete_new_users=True),)

    def login(self, provider, credentials):
        return appservices.Tokens(
            access_token="a",
            refresh_token="r",
            user_id=_object_id(time.time()),
            device_id="0" * 24,
            hostname=on_shop.url,
        )

    monkeypatch.setattr(appservices.AppServices, "login", login)
    sign_in_staff(client)

    act_for(client, "shop", customer_id())

    assert client.session["appservices"]["acting"]["new_user"] is True


def test_an_abandoned_act_for_session_is_ended_by_the_cleanup_once_its_box_is_over(
    client, on_shop, known_customers, monkeypatch
):
    # Staff start acting, then close the tab: no next request ever comes, so the middleware
    # never ends the box. The scheduled cleanup must, or the customer's refresh token (60 days)
    # lives on in the session row past the time box, with no act-for-end row to close the start.
    sign_in_staff(client)
    customer = customer_id()
    act_for(client, "shop", customer, "SUP-41", minutes="1")
    hostname, refresh = stored_refresh_token(client)
    later = time.time() + 61
    monkeypatch.setattr(time, "time", lambda: later)

    end_expired_sessions(10)

    assert not still_valid(hostname, refresh)
    assert "appservices" not in Session.objects.get().get_decoded()
    end = AuditEvent.objects.get(action="act-for-end")
    assert (end.acting_for, end.ticket, end.app_id) == (customer, "SUP-41", "shop-abcde")
    assert end.staff_subject == "sub-sam-support"  # the session's staff member
    assert end.detail == "time box ended (cleanup)"


def test_an_expired_staff_session_that_was_acting_gets_its_end_row(
    client, on_shop, known_customers
):
    sign_in_staff(client)
    customer = customer_id()
    act_for(client, "shop", customer, "SUP-42")
    hostname, refresh = stored_refresh_token(client)
    Session.objects.update(expire_date=timezone.now() - timedelta(seconds=1))

    end_expired_sessions(10)

    assert not still_valid(hostname, refresh)
    end = AuditEvent.objects.get(action="act-for-end")
    assert (end.acting_for, end.ticket, end.staff_subject) == (
        customer,
        "SUP-42",
        "sub-sam-support",
    )
    assert end.detail == "staff session expired (cleanup)"


def test_the_cleanup_leaves_a_session_acting_within_its_box_alone(client, on_shop, known_customers):
    sign_in_staff(client)
    act_for(client, "shop", customer_id())
    hostname, refresh = stored_refresh_token(client)

    end_expired_sessions(10)

    assert still_valid(hostname, refresh)
    assert not AuditEvent.objects.filter(action="act-for-end").exists()


def test_staff_cannot_act_for_a_colleague_through_the_bridge_app(
    client, on_shop, known_customers, settings
):
    # With the bridge on, a colleague's own App Services user is the one a Custom JWT with
    # `sub` = their SSO subject signs in to, which is exactly what an act-for token for that
    # "customer id" is (the provider does not read `act`): acting for it would hand over the
    # colleague's own keys, filed in the trail as a customer's.
    settings.KEYADMIN_APPSERVICES_BRIDGE = True
    settings.KEYADMIN_APPS = (act_for_app(on_shop, "shop", customer_pattern=None),)
    colleague = staff_of(staff_user("viewer", "operator", name="Ada Admin")).subject
    sign_in_staff(client)

    response = act_for(client, "shop", colleague)

    assert response.status_code == 200
    assert "own App Services user on this app" in response.content.decode()
    assert on_shop.request_count() == 0
    refused = AuditEvent.objects.get(action="act-for-start")
    assert (refused.outcome, refused.detail) == ("denied", "customer-is-staff")


def test_without_the_bridge_a_customer_id_like_a_staff_subject_is_acted_for(
    client, on_shop, known_customers, settings
):
    settings.KEYADMIN_APPS = (act_for_app(on_shop, "shop", customer_pattern=None),)
    colleague = staff_of(staff_user("viewer", name="Ada Admin")).subject
    sign_in_staff(client)

    assert act_for(client, "shop", colleague).status_code == 302


def test_acting_on_an_app_taken_out_of_the_file_ends_revoked_and_audited(
    client, on_shop, known_customers, settings
):
    # An administrator removes the app from the apps file, the quickest way to stop all work
    # on it: sessions acting there must not just be forgotten, leaving the customer's refresh
    # token live upstream for 60 days and the start without an end row.
    sign_in_staff(client)
    customer = customer_id()
    act_for(client, "shop", customer, "SUP-51")
    hostname, refresh = stored_refresh_token(client)
    settings.KEYADMIN_APPS = (act_for_app(on_shop, "other", app_id="other-fghij"),)

    response = client.get(KEYS_URL)

    assert response.status_code == 302 and response["Location"] == SIGNIN_URL
    assert "appservices" not in client.session
    assert not still_valid(hostname, refresh)
    end = AuditEvent.objects.get(action="act-for-end")
    assert (end.acting_for, end.ticket, end.app_id) == (customer, "SUP-51", "shop-abcde")
    assert end.detail == "app no longer configured"
    assert f"acting for {customer} has ended" in client.get(SIGNIN_URL).content.decode()


def test_the_debug_page_of_a_failed_act_for_start_shows_no_token_or_signing_key(
    on_shop, known_customers, settings, monkeypatch
):
    # DEBUG on (a development server signed in to a real app holds real keys all the same):
    # an uncaught error while the custom-token login's answer is read must show neither the
    # minted JWT, nor the app's HS256 signing key, nor the customer's new tokens.
    client = FormClient(raise_request_exception=False)
    sign_in_staff(client)
    seen: list[str] = []
    real_read = appservices_client._read
    real_mint = actfor.mint_act_for_token

    def mint(*args, **kwargs):
        seen.append(real_mint(*args, **kwargs))
        return seen[-1]

    def read_then_fail(status, content_type, content, method, route, **kwargs):
        if "custom-token" in route:
            payload = appservices_client._parse(content)
            seen.extend([payload["access_token"], payload["refresh_token"]])
            raise RuntimeError("induced failure after the answer arrived")
        return real_read(status, content_type, content, method, route, **kwargs)

    monkeypatch.setattr(actfor, "mint_act_for_token", mint)
    monkeypatch.setattr(appservices_client, "_read", read_then_fail)
    settings.DEBUG = True

    response = act_for(client, "shop", customer_id())

    page = response.content.decode()
    assert response.status_code == 500 and "induced failure" in page
    assert len(seen) == 3
    for text in (page, html.unescape(page)):
        for secret in [*seen, SECRET]:
            assert secret not in text, secret[:8]


def test_acting_that_app_services_ends_gets_its_end_row(client, on_shop, known_customers):
    # The customer's session dies upstream (the user disabled or deleted, their sessions
    # revoked by an administrator, a hostile upstream answering 401): keyadmin forgets the
    # connection on the next key call, and the trail must say acting ended there.
    sign_in_staff(client)
    customer = customer_id()
    act_for(client, "shop", customer, "SUP-61")
    hostname, refresh = stored_refresh_token(client)
    UserSession(hostname, refresh, allowed_hosts=("127.0.0.1",)).logout()

    response = client.get(KEYS_URL)

    assert response.status_code == 302 and response["Location"] == SIGNIN_URL
    assert "appservices" not in client.session
    end = AuditEvent.objects.get(action="act-for-end")
    assert (end.acting_for, end.ticket, end.app_id) == (customer, "SUP-61", "shop-abcde")
    assert end.detail == "App Services session ended"


def test_a_refused_form_while_acting_still_shows_the_banner(client, on_shop, known_customers):
    # A CSRF failure (a form from before a sign-in elsewhere, a page kept open too long) is
    # a page like any other: it must say whom staff act for, and offer End now.
    sign_in_staff(client)
    customer = customer_id()
    act_for(client, "shop", customer)
    checking = Client(enforce_csrf_checks=True)
    checking.cookies = client.cookies

    response = checking.post("/keys/new/", {"name": "no-token"})

    assert response.status_code == 403
    page = response.content.decode()
    assert "This form has expired" in page
    assert f'Acting for <strong translate="no">{customer}</strong>' in page
    assert "End now" in page


def test_a_throttled_start_is_filed_under_the_customer_tried_not_the_one_acted_for(
    client, on_shop, known_customers, settings
):
    # Staff acting for one customer try to start for another, past the limit: the block's row
    # is about that attempt. Filed under the customer still acted for (and their ticket), it
    # reads as something done to them.
    settings.KEYADMIN_ACT_FOR_STAFF_LIMIT = 1
    sign_in_staff(client)
    first, second = customer_id(), customer_id()
    act_for(client, "shop", first, "SUP-71")

    assert act_for(client, "shop", second, "SUP-72").status_code == 429

    throttled = AuditEvent.objects.get(action="throttled")
    assert (throttled.acting_for, throttled.ticket) == (second, "SUP-72")
    assert not AuditEvent.objects.filter(acting_for=first).exclude(action="act-for-start").exists()


def test_a_lowered_maximum_shortens_the_sessions_already_acting(
    client, on_shop, known_customers, settings
):
    # An administrator lowers max_act_for_minutes (30 to 5): a session started for 30 minutes
    # must not keep its longer box, whatever the app allows now.
    sign_in_staff(client)
    act_for(client, "shop", customer_id(), minutes="30")
    settings.KEYADMIN_APPS = (act_for_app(on_shop, "shop", max_act_for_minutes=5),)

    assert client.get(KEYS_URL).status_code == 200

    assert client.session["appservices"]["acting"]["ends_at"] <= time.time() + 5 * 60
