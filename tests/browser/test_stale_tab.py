"""Two tabs: the keys page of alice stays open while the other tab switches to bob.

The old tab's forms then act on nobody: each answer replaces the form it came from with the
reason and a reload link (no form bound to bob appears under alice's page), App Services gets
no request, and the page stays accessible.
"""

from __future__ import annotations

import secrets

from playwright.sync_api import expect

from tests.browser.support import SIGNIN_URL, create_button, open_keys, row, seed, toggle


def switch_user(page, live_server, email: str, password: str) -> None:
    page.goto(live_server.url + SIGNIN_URL)
    page.get_by_role("textbox", name="Email").fill(email)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator(".who")).to_contain_text(email)


def test_a_tab_left_on_alice_acts_on_nobody_after_switching_to_bob(
    keys_page, live_server, connected_client, emulator, user_credentials, problems, axe
):
    seed(connected_client, "alice-ci")
    alice_tab = open_keys(keys_page, live_server)
    bob = (f"bob-{secrets.token_hex(4)}@example.com", secrets.token_urlsafe(12))
    emulator.create_user(*bob)
    other_tab = alice_tab.context.new_page()
    problems.watch(other_tab)
    switch_user(other_tab, live_server, *bob)
    emulator.reset_stats()

    toggle(alice_tab, "alice-ci", "Disable").click()

    stale_row = alice_tab.locator("#key-rows > tr[data-stale-form]")
    expect(stale_row).to_contain_text(f"This page was for {user_credentials[0]}")
    expect(stale_row).to_contain_text(f"you are now connected as {bob[0]}")
    expect(stale_row.get_by_role("link", name="Reload the page")).to_be_focused()
    expect(row(alice_tab, "alice-ci")).to_have_count(0)  # its forms are gone with it

    alice_tab.get_by_label("Key name").fill("made-in-old-tab")
    create_button(alice_tab).click()

    stale_form = alice_tab.locator("#create-form[data-stale-form]")
    expect(stale_form).to_contain_text(f"you are now connected as {bob[0]}")
    expect(alice_tab.locator("[data-secret-panel]")).to_have_count(0)
    assert emulator.request_count() == 0
    assert emulator.keys_of(bob[0]) == []
    assert [key["disabled"] for key in emulator.keys_of(user_credentials[0])] == [False]
    assert axe() == []

    stale_form.get_by_role("link", name="Reload the page").click()

    expect(alice_tab.locator(".page-sub").first).to_contain_text(bob[0])
    expect(alice_tab.get_by_text("No keys yet.")).to_be_visible()
