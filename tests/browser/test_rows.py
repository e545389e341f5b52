"""A key's row: enable/disable in place, delete through the dialog, the link to its page."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.browser.support import count, delete_button, open_keys, row, seed, toggle
from tests.support import of


def test_disable_and_enable_change_the_row_in_place(
    keys_page, live_server, connected_client, emulator, user_credentials
):
    seed(connected_client, "ci-runner", "nightly")
    page = open_keys(keys_page, live_server)
    emulator.reset_stats()
    marker = row(page, "nightly").evaluate("tr => (tr.dataset.seen = 'before swap')")

    toggle(page, "ci-runner", "Disable").click()

    expect(row(page, "ci-runner").locator(".badge")).to_have_text("Disabled")
    expect(toggle(page, "ci-runner", "Enable")).to_be_focused()
    expect(page.locator("#notices")).to_contain_text(
        f"Key “ci-runner” {of(user_credentials[0])} disabled: it can no longer sign in."
    )
    assert emulator.request_count("keys_disable") == 1
    assert emulator.request_count() == 1  # no list re-read
    # only that row changed: the other one is the very same element, still enabled
    expect(row(page, "nightly")).to_have_attribute("data-seen", marker)
    expect(row(page, "nightly").locator(".badge")).to_have_text("Enabled")
    expect(page.locator("#key-rows > tr")).to_have_count(2)
    expect(page.locator("#key-rows > tr").first).to_have_attribute("data-name", "ci-runner")

    toggle(page, "ci-runner", "Enable").click()

    expect(row(page, "ci-runner").locator(".badge")).to_have_text("Enabled")
    expect(toggle(page, "ci-runner", "Disable")).to_be_focused()
    assert emulator.request_count("keys_enable") == 1
    assert emulator.request_count() == 2
    assert [key["disabled"] for key in emulator.keys_of(user_credentials[0])] == [False, False]


def test_delete_asks_in_a_dialog_then_removes_the_row(
    keys_page, live_server, connected_client, emulator, user_credentials
):
    seed(connected_client, "ci-runner", "nightly")
    page = open_keys(keys_page, live_server)
    emulator.reset_stats()
    dialog = page.get_by_role("dialog")

    delete_button(page, "ci-runner").click()

    expect(dialog).to_be_visible()
    expect(dialog).to_have_accessible_name("Delete key “ci-runner”?")
    expect(dialog).to_have_accessible_description(re.compile(r"^This is permanent"))
    expect(dialog.get_by_role("button", name="Cancel")).to_be_focused()
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(row(page, "ci-runner")).to_be_visible()
    expect(delete_button(page, "ci-runner")).to_be_focused()
    assert emulator.request_count() == 0

    delete_button(page, "ci-runner").click()
    dialog.get_by_role("button", name="Delete key").click()

    expect(row(page, "ci-runner")).to_have_count(0)
    expect(count(page)).to_have_text("1")
    expect(page.locator("#notices")).to_contain_text(
        f"Key “ci-runner” {of(user_credentials[0])} deleted."
    )
    expect(row(page, "nightly").get_by_role("link", name="nightly", exact=True)).to_be_focused()
    assert emulator.request_count("keys_delete") == 1
    assert emulator.request_count() == 1

    delete_button(page, "nightly").click()
    dialog.get_by_role("button", name="Delete key").click()

    expect(page.locator("#key-rows > tr")).to_have_count(0)
    expect(count(page)).to_have_text("0")
    expect(page.get_by_text("No keys yet. Create the first one above.")).to_be_visible()
    expect(page.locator("#keys-wrap")).to_be_hidden()
    expect(page.locator("#keys-heading")).to_be_focused()
    assert emulator.request_count("keys_delete") == 2
    assert emulator.keys_of(user_credentials[0]) == []


def test_a_key_deleted_in_another_tab_leaves_with_a_notice(
    keys_page, live_server, connected_client, emulator, user_credentials, problems
):
    seed(connected_client, "shared")
    first = open_keys(keys_page, live_server)
    second = first.context.new_page()
    problems.watch(second)
    open_keys(second, live_server)

    delete_button(first, "shared").click()
    first.get_by_role("dialog").get_by_role("button", name="Delete key").click()
    expect(row(first, "shared")).to_have_count(0)
    emulator.reset_stats()

    toggle(second, "shared", "Disable").click()

    expect(second.locator("#notices")).to_contain_text(
        f"Key “shared” {of(user_credentials[0])} no longer exists (deleted elsewhere?), so it "
        "left the list."
    )
    expect(row(second, "shared")).to_have_count(0)
    expect(count(second)).to_have_text("0")
    expect(second.get_by_text("No keys yet.")).to_be_visible()
    assert emulator.request_count("keys_disable") == 1


def test_the_row_link_opens_the_key_detail_page(keys_page, live_server, connected_client, axe):
    [key_id] = seed(connected_client, "ci-runner")
    page = open_keys(keys_page, live_server)
    assert axe() == []  # the keys page with a key in the table

    row(page, "ci-runner").get_by_role("link", name="ci-runner", exact=True).click()

    expect(page).to_have_url(f"{live_server.url}/keys/{key_id}/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Key “ci-runner”")
    expect(page.locator("#key-id")).to_have_text(key_id)
    expect(page.locator(".details")).to_contain_text("Enabled It can sign in.")
    expect(page).to_have_title("Key ci-runner · keyadmin")
    assert axe() == []
    page.get_by_role("link", name="All keys").click()
    expect(row(page, "ci-runner")).to_be_visible()


def test_a_delete_confirmed_right_after_a_cancel_still_deletes(
    keys_page, live_server, connected_client, emulator
):
    seed(connected_client, "quick-hands")
    page = open_keys(keys_page, live_server)
    delete_button(page, "quick-hands").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()

    # Cancel and ask again within one task: the first "close" event arrives after the reopen.
    page.evaluate(
        """() => {
            document.getElementById('delete-dialog').close();
            document.querySelector('tr.key-row[data-name="quick-hands"] form[data-confirm-delete]')
                .requestSubmit();
        }"""
    )
    expect(dialog).to_be_visible()
    dialog.get_by_role("button", name="Delete key").click()

    expect(row(page, "quick-hands")).to_have_count(0)
    assert emulator.request_count("keys_delete") == 1
