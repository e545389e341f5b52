"""Acting for a customer in a browser: the form, the banner on every page, End now; axe clean."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from keyadmin.appservices import AppServices
from keyadmin.appservices import connection as connection_module
from tests.keys.actfor_support import act_for_app, customer_id, start_customer_server


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    server = start_customer_server("shop-abcde", tmp_path_factory.mktemp("shop") / "db.sqlite3")
    yield server
    server.stop()


def test_a_staff_member_acts_for_a_customer_and_ends_it(
    staff_page, live_server, axe, shop, settings, monkeypatch
):
    monkeypatch.setattr(connection_module, "NEW_USER_SECONDS", -1)
    settings.KEYADMIN_APPS = (act_for_app(shop, "shop", environment="production"),)
    AppServices(settings.KEYADMIN_APPS[0]).hostname()
    customer = customer_id()
    page = staff_page

    page.goto(f"{live_server.url}/appservices/sign-in/")
    assert axe() == []
    page.get_by_label("Customer id").fill(customer)
    page.get_by_label("Reason or ticket reference").fill("SUP-77")
    page.get_by_role("button", name="Act for this customer").click()

    banner = page.get_by_role("region", name="Acting for a customer")
    expect(banner).to_contain_text(
        re.compile(rf"Acting for {customer} · Shop shop · ticket SUP-77")
    )
    expect(banner).to_contain_text("Production")
    assert axe() == []
    page.get_by_label("Key name").fill("support-made")
    page.get_by_role("button", name="Create key").click()
    expect(page.get_by_role("heading", name=re.compile("support-made"))).to_be_visible()
    assert axe() == []

    for path in ("/appservices/sign-in/", "/audit/"):
        page.goto(f"{live_server.url}{path}")
        expect(banner).to_be_visible()
        assert axe() == [], path

    banner.get_by_role("button", name="End now").click()
    expect(page.get_by_text(f"You no longer act for {customer}")).to_be_visible()
    expect(banner).to_have_count(0)
    assert axe() == []


def test_a_mistyped_id_is_reported_and_its_empty_user_deleted(
    staff_page, live_server, axe, shop, settings
):
    settings.KEYADMIN_APPS = (act_for_app(shop, "shop", delete_new_users=True),)
    AppServices(settings.KEYADMIN_APPS[0]).hostname()
    customer = customer_id()
    page = staff_page

    page.goto(f"{live_server.url}/appservices/sign-in/")
    page.get_by_label("Customer id").fill("not-a-customer")
    page.get_by_label("Reason or ticket reference").fill("SUP-78")
    page.get_by_role("button", name="Act for this customer").click()
    field_error = page.locator("#id_customer_id_error")
    expect(field_error).to_contain_text("does not match the pattern")
    expect(page.get_by_label("Customer id")).to_have_attribute("aria-invalid", "true")
    assert axe() == []

    page.get_by_label("Customer id").fill(customer)
    page.get_by_role("button", name="Act for this customer").click()
    banner = page.get_by_role("region", name="Acting for a customer")
    expect(banner).to_contain_text("a new, empty user was created")
    assert axe() == []

    banner.get_by_role("button", name="Delete this empty user and end").click()
    expect(page.get_by_text(f"The empty App Services user made for {customer}")).to_be_visible()
    expect(banner).to_have_count(0)
    assert axe() == []
