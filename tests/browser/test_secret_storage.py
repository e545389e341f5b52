"""Once the page is left, a new key's secret is in neither the DOM nor web storage."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.browser.support import (
    SECRET_GONE_NOTE,
    STORAGE,
    create_in_browser,
    open_keys,
    row,
    secret_panel,
)


def assert_secret_gone(page, secret: str) -> None:
    assert secret not in page.content()
    assert secret not in page.evaluate(STORAGE)
    expect(secret_panel(page)).to_have_count(0)


def test_the_secret_is_gone_after_back_and_after_a_reload(keys_page, live_server):
    page = open_keys(keys_page, live_server)
    secret = create_in_browser(page, "backed-up")
    assert secret not in page.evaluate(STORAGE)  # not even while it is shown

    row(page, "backed-up").get_by_role("link", name="backed-up", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Key “backed-up”")
    assert secret not in page.content()

    page.go_back()
    expect(row(page, "backed-up")).to_be_visible()
    assert_secret_gone(page, secret)

    page.reload()
    expect(row(page, "backed-up")).to_be_visible()
    assert_secret_gone(page, secret)


def test_a_back_forward_cache_restore_shows_no_secret(keys_page, live_server):
    """Chromium keeps no-store pages out of its back/forward cache today (it says why over the
    DevTools protocol: MainResourceHasCacheControlNoStore), but that is being relaxed. With the
    header removed in the browser, the page is restored from the cache: keyadmin.js must have
    taken the secret out on `pagehide`."""
    page = keys_page

    def cacheable(route):
        response = route.fetch()
        headers = {k: v for k, v in response.headers.items() if k.lower() != "cache-control"}
        route.fulfill(response=response, headers=headers)

    page.route("**/keys/**", cacheable)
    open_keys(page, live_server)
    secret = create_in_browser(page, "cached")
    row(page, "cached").get_by_role("link", name="cached", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Key “cached”")

    page.go_back(wait_until="commit")  # a restored page fires no load event

    # Only the restored page has this note: a fresh load never had a panel to remove.
    expect(page.locator("#new-secrets")).to_have_text(SECRET_GONE_NOTE)
    assert_secret_gone(page, secret)
    expect(row(page, "cached")).to_be_visible()
