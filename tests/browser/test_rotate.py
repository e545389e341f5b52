"""Rotating a key in the browser: the successor's secret once, the old key kept until disabled."""

from __future__ import annotations

from datetime import timedelta

from django.utils import timezone
from playwright.sync_api import expect

from tests.browser.support import STORAGE, open_keys, row, secret_panel, seed, shown_secret
from tests.support import of, row_post


def test_rotate_shows_the_successor_s_secret_once_then_disables_the_old_key(
    keys_page, live_server, connected_client, emulator, user_credentials, axe
):
    seed(connected_client, "ci-runner", "nightly")
    page = open_keys(keys_page, live_server)
    emulator.reset_stats()
    old = row(page, "ci-runner")

    old.get_by_text("Rotate").click()
    name = old.get_by_label("Name of the new key")
    expect(name).to_have_value("ci-runner-2")  # free among the listed keys, editable
    assert axe() == []  # the page with a rotate form open
    old.get_by_role("button", name="Create the new key").click()

    secret = shown_secret(page, "ci-runner-2")
    panel = secret_panel(page)
    assert emulator.request_count("keys_create") == 1
    assert emulator.request_count() == 1
    expect(panel).to_contain_text(user_credentials[0])
    expect(panel).to_contain_text("It replaces “ci-runner”, which stays enabled")
    expect(panel.get_by_role("heading")).to_be_focused()
    expect(row(page, "ci-runner-2")).to_be_visible()
    expect(row(page, "ci-runner-2")).to_contain_text("Created by")
    expect(row(page, "ci-runner")).to_contain_text("Superseded by “ci-runner-2”")
    expect(row(page, "ci-runner").locator(".badge-on")).to_have_text("Enabled")
    expect(page.locator("#key-count")).to_have_text("3")
    assert axe() == []  # the panel after a rotation, and the superseded row

    panel.get_by_role("button", name="Disable old key ci-runner").click()

    expect(row(page, "ci-runner").locator(".badge-off")).to_have_text("Disabled")
    expect(page.locator("#notices")).to_contain_text(
        f"Key “ci-runner” {of(user_credentials[0])} disabled"
    )
    assert emulator.request_count("keys_disable") == 1
    assert emulator.request_count() == 2
    states = {key["name"]: key["disabled"] for key in emulator.keys_of(user_credentials[0])}
    assert states == {"ci-runner": True, "nightly": False, "ci-runner-2": False}
    assert secret not in page.evaluate(STORAGE)
    assert axe() == []

    panel.get_by_role("button", name="I have stored it").click()
    expect(secret_panel(page)).to_have_count(0)
    page.reload()
    expect(row(page, "ci-runner")).to_contain_text("Superseded by “ci-runner-2”")
    assert secret not in page.content()


def test_the_review_filter_and_count_follow_the_rows_in_place(
    keys_page, live_server, connected_client, emulator, axe
):
    late, _ = seed(connected_client, "ci-runner", "nightly")
    overdue = (timezone.localdate() - timedelta(days=2)).isoformat()
    connected_client.post(
        f"/keys/{late}/note/",
        row_post(late, "ci-runner", purpose="CI", ticket="", owner="", review_by=overdue),
    )
    page = open_keys(keys_page, live_server)
    emulator.reset_stats()
    header = page.locator("#review-count")
    expect(header).to_contain_text("Review overdue: 1")
    expect(row(page, "ci-runner").locator(".badge-overdue")).to_have_text("Review overdue")

    page.get_by_label("Review", exact=True).select_option("overdue")

    expect(row(page, "nightly")).to_be_hidden()
    expect(row(page, "ci-runner")).to_be_visible()
    assert axe() == []

    page.get_by_role("button", name="Reviewed ci-runner").click()

    expect(row(page, "ci-runner").locator(".badge-overdue")).to_have_count(0)
    expect(header).to_be_hidden()
    expect(page.locator("#keys-nomatch")).to_be_visible()  # the filter still applies
    assert emulator.request_count() == 0  # a review is keyadmin's own business


def test_the_proposed_name_moves_on_when_a_key_made_since_took_it(
    keys_page, live_server, connected_client
):
    seed(connected_client, "ci-runner")
    page = open_keys(keys_page, live_server)
    page.get_by_label("Key name").fill("ci-runner-2")
    page.locator("#create-form").get_by_role("button", name="Create key").click()
    expect(row(page, "ci-runner-2")).to_be_visible()

    row(page, "ci-runner").get_by_text("Rotate").click()

    expect(row(page, "ci-runner").get_by_label("Name of the new key")).to_have_value("ci-runner-3")


def test_edit_note_and_rotate_open_in_the_row_and_give_the_focus_back(
    keys_page, live_server, connected_client, emulator, axe
):
    seed(connected_client, "ci-runner")
    page = open_keys(keys_page, live_server)
    emulator.reset_stats()
    key = row(page, "ci-runner")

    key.get_by_role("link", name="Edit note of ci-runner").focus()
    page.keyboard.press("Enter")
    expect(row(page, "ci-runner").get_by_label("Purpose")).to_be_focused()
    assert axe() == []  # the page with a note form open
    page.keyboard.press("Escape")
    expect(row(page, "ci-runner").get_by_label("Purpose")).to_have_count(0)
    expect(
        row(page, "ci-runner").get_by_role("link", name="Edit note of ci-runner")
    ).to_be_focused()

    row(page, "ci-runner").get_by_role("link", name="Rotate ci-runner").click()
    expect(row(page, "ci-runner").get_by_label("Name of the new key")).to_be_focused()
    row(page, "ci-runner").get_by_role("button", name="Cancel").click()
    expect(row(page, "ci-runner").get_by_label("Name of the new key")).to_have_count(0)
    expect(row(page, "ci-runner").get_by_role("link", name="Rotate ci-runner")).to_be_focused()
    assert emulator.request_count() == 0  # opening a form asks App Services nothing

    row(page, "ci-runner").get_by_role("link", name="Edit note of ci-runner").click()
    row(page, "ci-runner").get_by_label("Purpose").fill("Nightly CI")
    row(page, "ci-runner").get_by_role("button", name="Save note of ci-runner").click()
    expect(row(page, "ci-runner")).to_contain_text("Nightly CI")
    expect(
        row(page, "ci-runner").get_by_role("link", name="Edit note of ci-runner")
    ).to_be_focused()
