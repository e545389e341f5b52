"""Lock-down with undo, and bulk delete of a keyboard selection, in a browser; axe clean."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import TIMEOUT_MS, give_session
from tests.browser.support import (
    count,
    live_history,
    open_keys,
    record_live_regions,
    row,
    seed,
    tab_to,
)
from tests.support import HTMX, key_url, row_post


def states(emulator, user_credentials) -> dict[str, bool]:
    return {key["name"]: key["disabled"] for key in emulator.keys_of(user_credentials[0])}


def test_lock_down_then_undo_it(
    keys_page, live_server, connected_client, emulator, user_credentials, axe, settings
):
    ids = seed(connected_client, "ci-runner", "nightly", "old-one")
    connected_client.post(key_url(ids[2], "disable"), row_post(ids[2], "old-one"), headers=HTMX)
    page = open_keys(keys_page, live_server)
    assert axe() == []

    page.get_by_role("link", name="Disable all keys…").click()

    heading = page.get_by_role("heading", name=re.compile("Disable all 2 enabled keys of"))
    expect(heading).to_contain_text(user_credentials[0])
    expect(page.locator(".batch-keys li")).to_have_count(2)
    assert axe() == []
    emulator.set_latency(300)  # long enough to see the progress text
    emulator.reset_stats()
    record_live_regions(page)

    page.get_by_role("button", name="Disable 2 keys").click()

    results = page.get_by_role("heading", name=re.compile(": 2 of 2 keys disabled"))
    expect(results).to_be_focused()
    assert any("Disabling 2 keys" in said for said in live_history(page))
    expect(page.locator('[data-result="done"]')).to_have_count(2)
    assert emulator.request_count() == 3  # the list, then one per key
    assert states(emulator, user_credentials) == {
        "ci-runner": True,
        "nightly": True,
        "old-one": True,
    }
    assert axe() == []
    emulator.set_latency(0)

    # Later, from the keys page: the lock-down is the latest, so its undo is offered there.
    open_keys(page, live_server)
    expect(page.locator("[data-latest-lockdown]")).to_contain_text("locked down by")
    page.locator("[data-latest-lockdown]").get_by_role("link", name="Undo this lock-down").click()
    expect(page.locator(".batch-keys li")).to_have_count(2)
    assert axe() == []
    undo_page = page.url
    page.get_by_role("button", name="Undo this lock-down").click()

    expect(
        page.get_by_role("heading", name=re.compile("2 of 2 keys enabled again"))
    ).to_be_focused()
    # old-one was disabled before the lock-down: it stays disabled.
    assert states(emulator, user_credentials) == {
        "ci-runner": False,
        "nightly": False,
        "old-one": True,
    }
    assert axe() == []
    open_keys(page, live_server)
    expect(page.locator("[data-latest-lockdown]")).to_have_count(0)
    # Its undo page again (a second tab, the back button): who undid it, and no second undo.
    page.goto(undo_page)
    expect(page.locator("[data-undone]")).to_contain_text("This lock-down was undone by")
    expect(page.get_by_role("button", name="Undo this lock-down")).to_have_count(0)
    assert axe() == []


def test_bulk_delete_of_a_keyboard_selection_that_respects_the_filter(
    keys_page, live_server, connected_client, emulator, user_credentials, axe
):
    seed(connected_client, "ci-a", "ci-b", "prod-c")
    page = open_keys(keys_page, live_server)
    keyboard = page.keyboard
    page.get_by_label("Select prod-c").check()
    expect(page.locator("[data-bulk-count]")).to_have_text("1 key selected")
    page.get_by_label("Name contains").fill("ci-")
    expect(row(page, "prod-c")).to_be_hidden()
    # A row the filter hides leaves the selection: no action touches a key not shown.
    expect(page.get_by_label("Select prod-c")).not_to_be_checked()
    expect(page.locator("[data-bulk-count]")).to_have_text("No key selected")

    # "Select all shown", with the keyboard: the hidden row stays out of the selection.
    tab_to(page, page.get_by_label("Select all shown keys"))
    keyboard.press("Space")
    expect(page.get_by_label("Select ci-a")).to_be_checked()
    expect(page.get_by_label("Select ci-b")).to_be_checked()
    expect(page.get_by_label("Select prod-c")).not_to_be_checked()
    expect(page.locator("[data-bulk-count]")).to_have_text("2 keys selected")
    # one row off again, and back on, with Space on its own box
    tab_to(page, page.get_by_label("Select ci-b"))
    keyboard.press("Space")
    expect(page.locator("[data-bulk-count]")).to_have_text("1 key selected")
    keyboard.press("Space")
    assert axe() == []
    emulator.reset_stats()

    tab_to(page, page.get_by_role("button", name="Delete selected"), key="Shift+Tab")
    keyboard.press("Enter")

    confirm = page.locator("#bulk-panel")
    expect(confirm.get_by_role("heading")).to_have_text(
        re.compile(rf"Delete 2 keys of {re.escape(user_credentials[0])} on ")
    )
    expect(confirm.get_by_role("heading")).to_be_focused()
    assert emulator.request_count() == 1  # the confirmation's list
    assert axe() == []
    tab_to(page, confirm.get_by_role("button", name="Delete 2 keys"), limit=5)
    keyboard.press("Enter")

    expect(confirm.get_by_role("heading")).to_have_text(re.compile("2 of 2 keys of .* deleted"))
    expect(row(page, "ci-a")).to_have_count(0)
    expect(row(page, "ci-b")).to_have_count(0)
    expect(count(page)).to_have_text("1")
    expect(page.locator("[data-bulk-count]")).to_have_text("No key selected")
    assert emulator.request_count() == 4  # + the list, then one delete per key
    assert sorted(states(emulator, user_credentials)) == ["prod-c"]
    assert axe() == []

    confirm.get_by_role("link", name="Close").click()
    expect(page.locator("#bulk-panel")).to_be_empty()


@pytest.fixture
def no_js_page(browser, live_server, connected_client, problems):
    context = browser.new_context(java_script_enabled=False)
    context.set_default_timeout(TIMEOUT_MS)
    give_session(context, live_server, connected_client)
    page = context.new_page()
    problems.watch(page)
    yield page
    context.close()


def test_bulk_disable_without_javascript_is_a_form_and_two_pages(
    no_js_page, live_server, connected_client, emulator, user_credentials
):
    seed(connected_client, "ci-a", "ci-b", "prod-c")
    page = open_keys(no_js_page, live_server)
    expect(page.get_by_label("Select all shown keys")).to_be_hidden()  # needs JavaScript
    page.get_by_label("Select ci-a").check()
    page.get_by_label("Select prod-c").check()
    emulator.reset_stats()

    page.get_by_role("button", name="Disable selected").click()

    expect(page.get_by_role("heading", level=2)).to_have_text(
        re.compile(rf"Disable 2 keys of {re.escape(user_credentials[0])} on ")
    )
    page.get_by_role("button", name="Disable 2 keys").click()

    expect(page.get_by_role("heading", level=2)).to_have_text(re.compile("2 of 2 keys .* disabled"))
    expect(page.locator('[data-result="done"]')).to_have_count(2)
    assert emulator.request_count() == 4  # the confirmation's list, the list, two disables
    assert states(emulator, user_credentials) == {"ci-a": True, "ci-b": False, "prod-c": True}
