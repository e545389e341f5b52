"""Helpers for the browser tests (no tests here): pages, rows, the secret panel, the keyboard.

Keys are seeded through the Django test client (`seed`), which shares the browser's session
cookie, so a test spends browser time only on the flow it is about.
"""

from __future__ import annotations

import re

from playwright.sync_api import Locator, Page, expect

from tests.support import create_key

KEYS_URL = "/keys/"
SIGNIN_URL = "/appservices/sign-in/"
STORAGE = "JSON.stringify(localStorage) + JSON.stringify(sessionStorage)"
SECRET_GONE_NOTE = "The secret was removed from the page."


def seed(client, *names: str) -> list[str]:
    """Create keys named `names` through keyadmin's own create view; their ids, in order."""
    return [create_key(client, name) for name in names]


def open_keys(page: Page, live_server) -> Page:
    page.goto(live_server.url + KEYS_URL)
    expect(page.get_by_role("heading", level=1, name="API keys")).to_be_visible()
    return page


def row(page: Page, name: str) -> Locator:
    return page.locator(f'#key-rows > tr.key-row[data-name="{name}"]')


def toggle(page: Page, name: str, action: str) -> Locator:
    """The row's Enable/Disable button, by its accessible name ("Disable ci-runner")."""
    return page.get_by_role("button", name=f"{action} {name}", exact=True)


def delete_button(page: Page, name: str) -> Locator:
    return page.get_by_role("button", name=f"Delete {name}", exact=True)


def count(page: Page) -> Locator:
    return page.locator("#key-count")


def create_button(page: Page) -> Locator:
    return page.locator("#create-form").get_by_role("button", name="Create key")


def secret_panel(page: Page) -> Locator:
    return page.locator("[data-secret-panel]")


def create_in_browser(page: Page, name: str) -> str:
    """Type `name`, press "Create key" and return the secret the panel shows."""
    page.get_by_label("Key name").fill(name)
    create_button(page).click()
    return shown_secret(page, name)


def shown_secret(page: Page, name: str) -> str:
    panel = secret_panel(page).filter(has_text=f"Key “{name}” created")
    expect(panel).to_have_count(1)
    secret = panel.locator(".secret-value").text_content().strip()
    assert re.fullmatch(r"\S{16,}", secret), secret
    return secret


def live_texts(page: Page) -> list[str]:
    """What every aria-live region says right now."""
    return page.locator("[aria-live]").all_text_contents()


def record_live_regions(page: Page) -> None:
    """From now on, keep every text any aria-live region takes (read with `live_history`)."""
    page.evaluate(
        """() => {
            window.__liveHistory = [];
            const observer = new MutationObserver(() => {
                document.querySelectorAll('[aria-live]').forEach(
                    (el) => window.__liveHistory.push(el.textContent));
            });
            observer.observe(document.body, {subtree: true, childList: true, characterData: true});
        }"""
    )


def live_history(page: Page) -> list[str]:
    return page.evaluate("window.__liveHistory")


def deny_clipboard(page: Page):
    """Refuse clipboard access to this page's context, as a user (or policy) would.

    Playwright can only grant permissions; a cleared grant still leaves Chromium's default
    (write allowed in the active tab), so the refusal goes through the DevTools protocol.
    """
    cdp = page.context.new_cdp_session(page)
    context_id = cdp.send("Target.getTargetInfo")["targetInfo"]["browserContextId"]
    for name in ("clipboard-write", "clipboard-read"):
        cdp.send(
            "Browser.setPermission",
            {"permission": {"name": name}, "setting": "denied", "browserContextId": context_id},
        )
    return cdp  # kept open: detaching the session drops the override


def focused_html(page: Page) -> str:
    return page.evaluate("document.activeElement ? document.activeElement.outerHTML : ''")


def tab_to(page: Page, target: Locator, *, limit: int = 40, key: str = "Tab") -> int:
    """Press Tab until `target` has the focus; how many presses it took (fails past `limit`)."""
    handle = target.element_handle()
    for presses in range(1, limit + 1):
        page.keyboard.press(key)
        if handle.evaluate("el => el === document.activeElement"):
            return presses
    raise AssertionError(f"{key} never reached {target}; focus is on {focused_html(page)}")
