"""Without JavaScript every action is a plain form post, and the secret gets a page of its own."""

from __future__ import annotations

import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import expect

from tests.browser.conftest import TIMEOUT_MS, give_session
from tests.browser.support import (
    count,
    delete_button,
    open_keys,
    row,
    seed,
    toggle,
)
from tests.support import of


@pytest.fixture
def no_js_page(browser, live_server, connected_client, problems):
    context = browser.new_context(java_script_enabled=False)
    context.set_default_timeout(TIMEOUT_MS)
    give_session(context, live_server, connected_client)
    page = context.new_page()
    problems.watch(page)
    yield page
    context.close()


def test_create_without_javascript_shows_the_secret_page(
    no_js_page, live_server, emulator, user_credentials
):
    page = open_keys(no_js_page, live_server)
    expect(page.locator("html")).not_to_have_class("js")
    emulator.reset_stats()

    page.get_by_label("Key name").fill("no-js-bot")
    page.locator("#create-form").get_by_role("button", name="Create key").click()

    expect(page).to_have_url(f"{live_server.url}/keys/new/")  # the POST's own answer
    expect(page).to_have_title("Key created · keyadmin")
    panel = page.locator("[data-secret-panel]")
    [key] = emulator.keys_of(user_credentials[0])
    secret = panel.locator(".secret-value").text_content()
    assert len(secret) >= 16
    assert emulator.request_count() == 1  # one create, no list
    expect(panel.locator(".secret-value")).to_be_hidden()  # <details> masks it natively
    panel.get_by_text("Show secret").click()
    expect(panel.locator(".secret-value")).to_be_visible()
    expect(panel.get_by_role("button", name="Copy secret")).to_be_hidden()  # needs JavaScript

    panel.get_by_role("link", name="I have stored it: back to the keys").click()

    expect(page).to_have_url(f"{live_server.url}/keys/")
    expect(row(page, "no-js-bot")).to_be_visible()
    expect(row(page, "no-js-bot")).to_have_attribute("id", f"key-{key['_id']}")
    assert secret not in page.content()
    emulator.reset_stats()

    # Back to the secret page: it answered a POST and was no-store, so Chromium has nothing to
    # show and does not send the POST again by itself.
    with pytest.raises(PlaywrightError, match="ERR_CACHE_MISS"):
        page.go_back()
    assert emulator.request_count() == 0
    assert len(emulator.keys_of(user_credentials[0])) == 1


def test_toggle_and_delete_without_javascript_are_plain_posts(
    no_js_page, live_server, connected_client, emulator, user_credentials
):
    seed(connected_client, "ci-runner", "nightly")
    page = open_keys(no_js_page, live_server)
    emulator.reset_stats()

    toggle(page, "ci-runner", "Disable").click()

    expect(page).to_have_url(f"{live_server.url}/keys/")  # redirected after the POST
    expect(page.locator("#notices")).to_contain_text(
        f"Key “ci-runner” {of(user_credentials[0])} disabled"
    )
    expect(row(page, "ci-runner").locator(".badge")).to_have_text("Disabled")
    assert emulator.request_count("keys_disable") == 1

    toggle(page, "ci-runner", "Enable").click()
    expect(row(page, "ci-runner").locator(".badge")).to_have_text("Enabled")

    delete_button(page, "ci-runner").click()

    expect(page).to_have_url(f"{live_server.url}/keys/{row_id(emulator, user_credentials)}/delete/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Delete key “ci-runner”?")
    expect(page.locator("main")).to_contain_text("This is permanent")
    assert emulator.request_count("keys_delete") == 0  # asking costs nothing upstream
    page.get_by_role("link", name="Cancel").click()
    expect(row(page, "ci-runner")).to_be_visible()

    delete_button(page, "ci-runner").click()
    page.get_by_role("button", name="Delete key").click()

    expect(page).to_have_url(f"{live_server.url}/keys/")
    expect(page.locator("#notices")).to_contain_text(
        f"Key “ci-runner” {of(user_credentials[0])} deleted."
    )
    expect(row(page, "ci-runner")).to_have_count(0)
    expect(row(page, "nightly")).to_be_visible()
    expect(count(page)).to_have_text("1")
    assert emulator.request_count("keys_delete") == 1
    assert [key["name"] for key in emulator.keys_of(user_credentials[0])] == ["nightly"]


def row_id(emulator, user_credentials) -> str:
    return next(k["_id"] for k in emulator.keys_of(user_credentials[0]) if k["name"] == "ci-runner")
