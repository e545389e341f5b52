"""Failures shown where they happen: an ended session, App Services down, slow answers, 404."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.browser.support import (
    KEYS_URL,
    SIGNIN_URL,
    count,
    create_button,
    open_keys,
    row,
    secret_panel,
    seed,
    shown_secret,
    toggle,
)

INVALID_SESSION = {"error_code": "InvalidSession", "error": "invalid session"}


def test_an_ended_session_goes_back_to_the_app_services_sign_in(
    keys_page, live_server, connected_client, emulator
):
    seed(connected_client, "ci-runner")
    page = open_keys(keys_page, live_server)
    emulator.add_fault(route="keys_disable", action="status", status=401, body=INVALID_SESSION)

    toggle(page, "ci-runner", "Disable").click()

    expect(page).to_have_url(live_server.url + SIGNIN_URL)
    expect(page.locator("#notices")).to_contain_text(
        "The App Services session has ended. Sign in to App Services again."
    )
    expect(page.get_by_role("textbox", name="Email")).to_be_visible()
    page.goto(live_server.url + KEYS_URL)  # the dead session was forgotten
    expect(page).to_have_url(live_server.url + SIGNIN_URL)


def test_create_failures_show_in_the_form_and_keep_the_name(keys_page, live_server, emulator):
    page = open_keys(keys_page, live_server)
    form = page.locator("#create-form")
    name = page.get_by_label("Key name")
    not_created = "App Services has no key named “release-bot”: the key was not created."
    emulator.reset_stats()

    for fault in ({"action": "status", "status": 503}, {"action": "html", "status": 502}):
        emulator.add_fault(route="keys_create", times=1, **fault)
        name.fill("release-bot")
        create_button(page).click()

        # the answer was lost, so keyadmin looked (one list request): nothing was made
        expect(form.get_by_role("alert")).to_contain_text(not_created)
        expect(form.get_by_role("alert").get_by_text("The name is kept")).to_have_count(1)
        expect(name).to_have_value("release-bot")
        expect(create_button(page)).to_be_focused()
        expect(create_button(page)).to_be_enabled()
        expect(secret_panel(page)).to_have_count(0)

    assert emulator.request_count("keys_create") == 2
    assert emulator.request_count("keys_list") == 2
    create_button(page).click()
    shown_secret(page, "release-bot")
    expect(row(page, "release-bot")).to_be_visible()
    expect(count(page)).to_have_text("1")


def test_an_unreachable_list_shows_a_banner_whose_retry_works(
    keys_page, live_server, connected_client, emulator, axe
):
    seed(connected_client, "ci-runner")
    emulator.add_fault(route="keys_list", action="drop")
    page = keys_page
    page.goto(live_server.url + KEYS_URL)

    banner = page.locator("#key-table").get_by_role("alert")
    expect(banner).to_contain_text("The keys could not be loaded.")
    expect(banner).to_contain_text("App Services closed the connection before answering.")
    expect(page.locator("#key-count")).to_have_count(0)
    assert axe() == []

    with page.expect_response(f"{live_server.url}{KEYS_URL}") as retried:
        banner.get_by_role("button", name="Retry").click()
    assert retried.value.status == 200
    expect(banner).to_contain_text("The keys could not be loaded.")  # still failing

    emulator.clear_faults()
    page.locator("#key-table").get_by_role("button", name="Retry").click()

    expect(page.locator("#key-table").get_by_role("alert")).to_have_count(0)
    expect(row(page, "ci-runner")).to_be_visible()
    expect(count(page)).to_have_text("1")
    # the fresh table works like the first one: the name check sees its rows
    page.get_by_label("Key name").fill("ci-runner")
    expect(page.locator("#name-check")).to_have_text("This user already has a key with this name.")


def test_slow_requests_show_progress_and_disable_their_buttons(
    keys_page, live_server, connected_client, emulator
):
    seed(connected_client, "ci-runner")
    page = open_keys(keys_page, live_server)
    emulator.add_fault(route="keys_create", action="delay", delay_ms=800, times=1)
    emulator.add_fault(route="keys_disable", action="delay", delay_ms=800, times=1)

    page.get_by_label("Key name").fill("slow-bot")
    create_button(page).click()
    toggle(page, "ci-runner", "Disable").click()  # both in flight at once

    expect(create_button(page)).to_be_disabled()
    expect(page.locator("#create-form .spinner")).to_be_visible()
    expect(row(page, "ci-runner")).to_have_class(re.compile(r"\bhtmx-request\b"))
    expect(row(page, "ci-runner").locator(".spinner")).to_be_visible()
    expect(toggle(page, "ci-runner", "Disable")).to_be_disabled()
    expect(row(page, "ci-runner").locator(".badge")).to_have_text("Enabled")

    shown_secret(page, "slow-bot")
    expect(create_button(page)).to_be_enabled()
    expect(page.locator("#create-form .spinner")).to_be_hidden()
    expect(row(page, "ci-runner").locator(".badge")).to_have_text("Disabled")
    expect(row(page, "ci-runner").locator(".spinner")).to_be_hidden()
    expect(toggle(page, "ci-runner", "Enable")).to_be_enabled()


def test_an_unknown_address_gets_the_404_page(staff_page, live_server, problems, axe):
    problems.expect("the server responded with a status of 404")
    response = staff_page.goto(live_server.url + "/keys/not-a-key-id/")

    assert response.status == 404
    expect(staff_page.get_by_role("heading", level=1)).to_have_text("Page not found")
    expect(staff_page.get_by_role("link", name="Back to the keys")).to_have_attribute("href", "/")
    assert axe() == []
