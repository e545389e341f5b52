"""A key's whole life with the keyboard only; focus lands somewhere sensible after each swap."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.browser.support import (
    count,
    delete_button,
    open_keys,
    row,
    secret_panel,
    shown_secret,
    tab_to,
    toggle,
)


def focus_is_visible(page) -> bool:
    return page.evaluate("document.activeElement.matches(':focus-visible')")


def test_create_copy_dismiss_disable_and_delete_with_the_keyboard(keys_page, live_server, emulator):
    page = open_keys(keys_page, live_server)
    keyboard = page.keyboard
    emulator.reset_stats()

    # create: Tab to the name, type, Enter
    tab_to(page, page.get_by_label("Key name"))
    assert focus_is_visible(page)
    keyboard.type("kb-bot")
    keyboard.press("Enter")
    secret = shown_secret(page, "kb-bot")
    panel = secret_panel(page)
    expect(panel.get_by_role("heading")).to_be_focused()

    # reveal and hide with Space on the summary, then copy with Enter
    keyboard.press("Tab")
    expect(panel.locator(".secret-reveal summary")).to_be_focused()
    keyboard.press("Space")
    expect(panel.locator(".secret-value")).to_be_visible()
    keyboard.press("Space")
    expect(panel.locator(".secret-value")).to_be_hidden()
    tab_to(page, panel.get_by_role("button", name="Copy secret"), limit=3)
    keyboard.press("Enter")
    expect(page.locator("#live")).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == secret

    # dismiss: back to the name field, ready for the next key
    tab_to(page, panel.get_by_role("button", name="I have stored it"), limit=3)
    keyboard.press("Space")
    expect(panel).to_have_count(0)
    expect(page.get_by_label("Key name")).to_be_focused()

    # disable: focus stays on the (now "Enable") button of the same row
    tab_to(page, toggle(page, "kb-bot", "Disable"))
    keyboard.press("Enter")
    expect(row(page, "kb-bot").locator(".badge")).to_have_text("Disabled")
    expect(toggle(page, "kb-bot", "Enable")).to_be_focused()

    # delete: Escape cancels (focus back on Delete), then Tab to "Delete key" and Enter
    keyboard.press("Tab")
    expect(delete_button(page, "kb-bot")).to_be_focused()
    keyboard.press("Enter")
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_role("button", name="Cancel")).to_be_focused()
    keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(delete_button(page, "kb-bot")).to_be_focused()
    assert emulator.request_count("keys_delete") == 0
    keyboard.press("Enter")
    keyboard.press("Tab")
    expect(dialog.get_by_role("button", name="Delete key")).to_be_focused()
    keyboard.press("Enter")

    expect(row(page, "kb-bot")).to_have_count(0)

    expect(count(page)).to_have_text("0")
    expect(page.locator("#keys-heading")).to_be_focused()  # no row left to go to
    expect(page.get_by_text("No keys yet.")).to_be_visible()
    assert emulator.request_count("keys_create") == 1
    assert emulator.request_count("keys_disable") == 1
    assert emulator.request_count("keys_delete") == 1
