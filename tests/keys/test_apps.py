"""Several App Services apps: picked on the connect page, kept apart, each with its own roles."""

from __future__ import annotations

import pytest
from django.test import Client

from keyadmin.appservices import AppServices, connection
from keyadmin.models import AuditEvent
from tests.keys.actfor_support import act_for, act_for_app, customer_id, start_customer_server
from tests.support import (
    HTMX,
    KEYS_URL,
    SIGNIN_URL,
    FormClient,
    create_key,
    key_url,
    row_post,
    sign_in_staff,
)


@pytest.fixture(scope="module")
def two_servers(tmp_path_factory):
    east = start_customer_server("east-abcde", tmp_path_factory.mktemp("east") / "db.sqlite3")
    west = start_customer_server("west-fghij", tmp_path_factory.mktemp("west") / "db.sqlite3")
    yield east, west
    east.stop()
    west.stop()


@pytest.fixture
def two_apps(two_servers, settings, monkeypatch):
    monkeypatch.setattr(connection, "NEW_USER_SECONDS", -1)
    east, west = two_servers
    settings.KEYADMIN_APPS = (
        act_for_app(east, "east", name="Shop East", environment="production"),
        act_for_app(west, "west", name="Shop West", environment="staging"),
    )
    for app in settings.KEYADMIN_APPS:
        AppServices(app).hostname()
    return east, west


def _email_user(server, client: Client, app_key: str):
    email, password = f"{app_key}-{customer_id()}@example.com", "a-long-password-1"
    server.create_user(email, password)
    response = client.post(
        SIGNIN_URL,
        {"provider": "local-userpass", "app": app_key, "email": email, "password": password},
    )
    assert response.status_code == 302, response.content.decode()[:1500]
    return email


def test_the_connect_page_lets_staff_pick_the_app_when_there_are_several(client, two_apps):
    sign_in_staff(client)

    page = client.get(SIGNIN_URL).content.decode()
    assert '<select name="app" id="id_app">' in page
    assert "Shop East (Production)" in page and "Shop West (Staging)" in page
    page = client.get(SIGNIN_URL + "?app=west").content.decode()
    assert '<option value="west" selected>' in page
    assert '<input type="hidden" name="app" value="west">' in page


def test_one_app_shows_no_picker(client, emulator):
    sign_in_staff(client)

    assert '<select name="app"' not in client.get(SIGNIN_URL).content.decode()


def test_signing_in_to_the_picked_app_goes_to_that_app_only(client, two_apps):
    east, west = two_apps
    sign_in_staff(client)
    east.reset_stats()
    west.reset_stats()

    email = _email_user(west, client, "west")

    assert east.request_count() == 0
    assert client.session["appservices"]["app_id"] == "west-fghij"
    page = client.get(KEYS_URL).content.decode()
    assert "Shop West" in page and 'class="env-badge env-staging">Staging<' in page
    create_key(client, "west-key")
    assert [k["name"] for k in west.keys_of(email)] == ["west-key"]
    assert AuditEvent.objects.get(action="create").app_id == "west-fghij"


def test_production_is_unmistakable_in_the_header_and_notices(client, two_apps):
    east, _west = two_apps
    sign_in_staff(client)
    _email_user(east, client, "east")
    key_id = create_key(client, "prod-key")

    page = client.get(KEYS_URL).content.decode()
    assert 'class="env-badge env-production">Production<' in page
    answer = client.post(
        key_url(key_id, "disable"), row_post(key_id, "prod-key"), headers=HTMX
    ).content.decode()
    assert "Shop East, production" in answer


def test_two_apps_in_two_tabs_never_mix(two_apps):
    """One staff session, two tabs: a page of east, then west connected in the other tab."""
    east, west = two_apps
    tab = FormClient()
    sign_in_staff(tab)
    east_email = _email_user(east, tab, "east")
    key_id = create_key(tab, "east-key")
    east_page = tab.get(KEYS_URL).content.decode()
    east_binding = east_page.split('name="bound_to" value="', 1)[1].split('"', 1)[0]
    _email_user(west, tab, "west")  # the other tab switches the session to west
    east.reset_stats()
    west.reset_stats()

    response = tab.post(
        key_url(key_id, "delete"),
        {**row_post(key_id, "east-key", confirm="1"), "bound_to": east_binding},
    )

    assert response.status_code == 409
    assert "app east-abcde" in response.content.decode()
    assert east.request_count() == 0 and west.request_count() == 0
    assert [k["name"] for k in east.keys_of(east_email)] == ["east-key"]


def test_acting_in_one_app_refuses_a_form_of_the_other(two_apps):
    _east, west = two_apps
    tab = FormClient()
    sign_in_staff(tab)
    act_for(tab, "east", customer_id())
    key_id = create_key(tab, "east-cust")
    binding = tab.get(KEYS_URL).content.decode().split('name="bound_to" value="', 1)[1]
    binding = binding.split('"', 1)[0]
    tab.post("/appservices/act-for/end/", {})
    act_for(tab, "west", customer_id())
    west.reset_stats()

    response = tab.post(
        key_url(key_id, "disable"), {**row_post(key_id, "east-cust"), "bound_to": binding}
    )

    assert response.status_code == 409
    assert west.request_count() == 0


def test_an_apps_operator_groups_are_checked_on_the_server(client, two_servers, settings):
    east, _west = two_servers
    settings.KEYADMIN_APPS = (act_for_app(east, "east", operator_groups=("prod-operators",)),)
    sign_in_staff(client)  # an operator everywhere else, but not in prod-operators
    _email_user(east, client, "east")

    page = client.get(KEYS_URL)
    assert page.status_code == 200
    assert 'id="create-form"' not in page.content.decode()  # no create form offered
    east.reset_stats()
    response = client.post("/keys/new/", {"name": "not-allowed"})

    assert response.status_code == 403
    assert east.request_count() == 0
    denied = AuditEvent.objects.get(action="denied")
    assert "operator role on app east" in denied.detail and denied.app_id == "east-abcde"


def test_an_apps_viewer_groups_refuse_connecting_to_it(client, two_servers, settings):
    east, _west = two_servers
    settings.KEYADMIN_APPS = (
        act_for_app(east, "east", viewer_groups=("east-viewers",), operator_groups=()),
    )
    sign_in_staff(client)
    east.reset_stats()

    response = client.post(
        SIGNIN_URL,
        {"provider": "local-userpass", "app": "east", "email": "a@b.io", "password": "x" * 12},
    )

    assert response.status_code == 403
    assert "its own groups do not include yours" in response.content.decode()
    assert east.request_count() == 0


def test_an_app_id_app_services_does_not_know_is_named_with_where_to_fix_it(
    client, two_servers, settings
):
    east, _west = two_servers
    settings.KEYADMIN_APPS = (
        act_for_app(east, "east", name="Shop East", app_id="typo-abcde"),
        act_for_app(east, "east-ok", name="Shop East (right id)", app_id="east-abcde"),
    )
    sign_in_staff(client)

    for response in (
        client.post(
            SIGNIN_URL,
            {"provider": "local-userpass", "app": "east", "email": "a@b.io", "password": "x" * 12},
        ),
        act_for(client, "east", customer_id()),
    ):
        page = response.content.decode()
        assert response.status_code == 200
        assert (
            "App Services does not know the app id typo-abcde (app Shop East). An administrator "
            "must check its app_id in KEYADMIN_APPS_FILE, or APPSERVICES_APP_ID without that "
            "file." in page
        )


def test_the_audit_trail_filters_by_app_customer_and_ticket_and_exports_them(client, two_apps):
    sign_in_staff(client)
    alice, bob = customer_id(), customer_id()
    act_for(client, "east", alice, "SUP-100")
    create_key(client, "alice-key")
    client.post("/appservices/act-for/end/", {})
    act_for(client, "west", bob, "SUP-200")
    client.post("/appservices/act-for/end/", {})
    client.get(SIGNIN_URL)  # shows (and so drops) the notices naming the customers

    by_customer = client.get("/audit/", {"customer": alice}).content.decode()
    assert "alice-key" in by_customer and bob not in by_customer
    by_app = client.get("/audit/", {"app": "west-fghij"}).content.decode()
    assert bob in by_app and alice not in by_app
    by_ticket = client.get("/audit/", {"ticket": "SUP-2"}).content.decode()
    assert bob in by_ticket and alice not in by_ticket
    csv = b"".join(client.get("/audit/export.csv", {"customer": alice}).streaming_content)
    header, *rows = csv.decode().splitlines()
    assert '"app_id","appservices_user_id","acting_for","ticket"' in header
    assert rows and all('"east-abcde",' in row and f'"{alice}","SUP-100"' in row for row in rows)
