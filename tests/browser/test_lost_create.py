"""A lost create in the browser: App Services made the key, its answer never arrived.

The page says the key exists but its secret is lost, shows the key's row, and deletes it with one
click; then the same name can be created again. Costs: create 1 + list 1, then delete 1.
"""

from __future__ import annotations

from playwright.sync_api import expect

from tests.browser.support import (
    count,
    create_button,
    create_in_browser,
    open_keys,
    row,
    secret_panel,
)
from tests.support import of

NAME = "lost-key"


def test_a_lost_create_is_found_and_deleted_in_one_click(
    keys_page, live_server, emulator, user_credentials, axe
):
    page = open_keys(keys_page, live_server)
    emulator.add_fault(route="keys_create", action="drop", when="after", times=1)
    emulator.reset_stats()

    page.get_by_label("Key name").fill(NAME)
    create_button(page).click()

    notice = page.locator("[data-lost-key]")
    expect(notice).to_contain_text(f"Key “{NAME}” was created but its secret was lost in transit.")
    expect(notice).to_contain_text("It cannot be shown again. Delete it and create a new one.")
    expect(notice).to_be_focused()
    expect(row(page, NAME)).to_be_visible()  # the orphan joins the table, out of band
    expect(count(page)).to_have_text("1")
    expect(secret_panel(page)).to_have_count(0)
    assert emulator.request_count("keys_create") == 1
    assert emulator.request_count("keys_list") == 1
    assert emulator.request_count() == 2
    [key] = emulator.keys_of(user_credentials[0])
    assert notice.get_attribute("data-lost-key") == key["_id"]
    assert axe() == []

    delete = notice.get_by_role("button")
    expect(delete).to_have_text(f"Delete “{NAME}”")
    delete.click()  # one click, no dialog

    expect(row(page, NAME)).to_have_count(0)
    expect(page.locator("[data-lost-key]")).to_have_count(0)
    expect(page.locator("#notices")).to_contain_text(
        f"Key “{NAME}” {of(user_credentials[0])} deleted."
    )
    expect(count(page)).to_have_text("0")
    assert emulator.keys_of(user_credentials[0]) == []
    assert emulator.request_count("keys_delete") == 1
    assert emulator.request_count() == 3

    create_in_browser(page, NAME)  # the name is free again, and this time the secret shows
    expect(row(page, NAME)).to_have_count(1)
