"""Creating a key in the browser: live name checks, the show-once secret panel, one request."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.browser.support import (
    count,
    create_button,
    deny_clipboard,
    live_history,
    live_texts,
    open_keys,
    record_live_regions,
    row,
    secret_panel,
    seed,
    shown_secret,
)


def test_name_checks_show_before_submitting_and_stop_the_request(
    keys_page, live_server, connected_client, emulator
):
    seed(connected_client, "ci-runner")
    page = open_keys(keys_page, live_server)
    emulator.reset_stats()
    name = page.get_by_label("Key name")
    check = page.locator("#name-check")

    name.fill("ci runner!")
    expect(check).to_have_text("Not allowed in a key name: “space”, “!”")
    expect(name).to_have_attribute("aria-invalid", "true")

    name.fill("ci-runner")  # the name of the row already in the table
    expect(check).to_have_text("This user already has a key with this name.")
    create_button(page).click()
    expect(name).to_be_focused()
    expect(check).to_have_text("This user already has a key with this name.")
    expect(secret_panel(page)).to_have_count(0)

    name.fill("ci-runner-2")
    expect(check).to_have_text("Name is free.")
    expect(name).not_to_have_attribute("aria-invalid", "true")
    assert emulator.request_count() == 0  # all of it checked in the page, nothing sent


def test_create_shows_the_secret_once_masked_with_copy_and_dismiss(
    keys_page, live_server, emulator, axe
):
    page = open_keys(keys_page, live_server)
    expect(count(page)).to_have_text("0")
    emulator.reset_stats()

    page.get_by_label("Key name").fill("deploy-bot")
    create_button(page).dblclick()  # a quick double click still makes one key

    secret = shown_secret(page, "deploy-bot")
    panel = secret_panel(page)
    assert emulator.request_count("keys_create") == 1
    assert emulator.request_count() == 1
    # the new row and the count, without reloading; the form is empty for the next key
    expect(row(page, "deploy-bot")).to_be_visible()
    expect(row(page, "deploy-bot").locator(".badge")).to_have_text("Enabled")
    expect(page.locator("#key-table .count")).to_have_text("1 of 20 keys")
    expect(page.locator("#keys-empty")).to_be_hidden()
    expect(page.get_by_label("Key name")).to_have_value("")
    # masked until asked; focus on the panel's heading
    expect(panel.get_by_role("heading")).to_be_focused()
    expect(panel.locator(".secret-value")).to_be_hidden()
    expect(panel.locator(".secret-dots")).to_be_visible()
    expect(panel).to_contain_text("This secret will not be shown again.")
    assert secret not in page.title()
    assert axe() == []

    panel.get_by_text("Show secret").click()
    expect(panel.locator(".secret-value")).to_be_visible()
    expect(panel.locator(".secret-value")).to_have_text(secret)
    panel.get_by_text("Hide secret").click()
    expect(panel.locator(".secret-value")).to_be_hidden()

    record_live_regions(page)
    panel.get_by_role("button", name="Copy secret").click()
    expect(page.locator("#live")).to_have_text("Copied")
    assert page.evaluate("navigator.clipboard.readText()") == secret
    assert panel.locator(".secret-value").is_hidden()  # copying does not unmask it
    assert all(secret not in text for text in live_texts(page) + live_history(page))

    panel.get_by_role("button", name="I have stored it").click()
    expect(panel).to_have_count(0)
    expect(page.locator("#live")).to_have_text("The secret was removed from the page.")
    expect(page.get_by_label("Key name")).to_be_focused()
    assert secret not in page.content()
    assert all(secret not in text for text in live_history(page))
    expect(row(page, "deploy-bot")).to_be_visible()


def test_a_refused_clipboard_shows_and_selects_the_secret(keys_page, live_server):
    page = open_keys(keys_page, live_server)
    page.get_by_label("Key name").fill("no-clipboard")
    create_button(page).click()
    secret = shown_secret(page, "no-clipboard")
    panel = secret_panel(page)
    refusal = deny_clipboard(page)  # in force while this DevTools session lives
    record_live_regions(page)

    panel.get_by_role("button", name="Copy secret").click()

    fallback = panel.get_by_text("Your browser did not allow copying.")
    expect(fallback).to_be_visible()
    expect(panel.locator(".secret-value")).to_be_visible()
    assert page.evaluate("window.getSelection().toString()").strip() == secret
    expect(page.locator("#live")).to_have_text(
        "Copying was blocked. The text is selected: press Ctrl+C (⌘C on a Mac)."
    )
    assert all(secret not in text for text in live_texts(page) + live_history(page))
    assert "denied" in page.evaluate(
        "navigator.clipboard.readText().then(() => 'read', (e) => 'denied: ' + e.message)"
    )  # the refusal really was in force: nothing went to the clipboard this way
    refusal.detach()


def test_a_second_key_gets_its_own_panel_above_the_first(keys_page, live_server, emulator):
    page = open_keys(keys_page, live_server)
    page.get_by_label("Key name").fill("first")
    create_button(page).click()
    first = shown_secret(page, "first")
    emulator.reset_stats()

    name = page.get_by_label("Key name")
    name.fill("second")
    name.press("Enter")
    name.press("Enter")  # pressed again at once: the request is still in flight

    second = shown_secret(page, "second")
    assert first != second
    expect(secret_panel(page)).to_have_count(2)
    expect(secret_panel(page).first).to_contain_text("Key “second” created")
    expect(page.locator("#key-rows > tr")).to_have_count(2)
    expect(count(page)).to_have_text("2")
    assert emulator.request_count("keys_create") == 1
