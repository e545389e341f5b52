"""The README's screenshot, taken from a real run: three keys, one new secret still masked."""

from __future__ import annotations

import os
import struct
import tempfile
from pathlib import Path

from playwright.sync_api import expect

from tests.browser.conftest import ROOT, give_session
from tests.browser.support import (
    count,
    create_in_browser,
    open_keys,
    row,
    secret_panel,
    seed,
)
from tests.support import HTMX, key_url, row_post

# The docs picture is refreshed only when asked (make screenshots), so a test run leaves the
# checkout clean; otherwise it goes to a scratch file.
SCREENSHOT = (
    ROOT / "docs" / "screenshot-keys.png"
    if os.environ.get("KEYADMIN_UPDATE_SCREENSHOTS")
    else Path(tempfile.gettempdir()) / "screenshot-keys.png"
)
WIDTH, HEIGHT = 1200, 800
EMAIL, PASSWORD = "ada@example.com", "screenshot-password"


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])


def test_readme_screenshot_of_the_keys_page(
    page, live_server, staff_client, emulator, problems, axe
):
    emulator.create_user(EMAIL, PASSWORD)  # fixed names: the picture changes only when the UI does
    staff_client.post(
        "/appservices/sign-in/",
        {"provider": "local-userpass", "email": EMAIL, "password": PASSWORD},
    )
    _ci, nightly = seed(staff_client, "ci-runner", "nightly-backup")
    staff_client.post(
        key_url(nightly, "disable"), row_post(nightly, "nightly-backup"), headers=HTMX
    )
    give_session(page.context, live_server, staff_client)
    page.set_viewport_size({"width": WIDTH, "height": HEIGHT})
    open_keys(page, live_server)
    page.locator("#notices").get_by_role("button", name="Dismiss").click()  # "Connected to …"

    create_in_browser(page, "deploy-bot")

    expect(page.locator("#key-rows > tr")).to_have_count(3)
    names = page.locator("#key-rows > tr").evaluate_all("rows => rows.map(r => r.dataset.name)")
    assert names == ["ci-runner", "nightly-backup", "deploy-bot"]
    expect(row(page, "nightly-backup").locator(".badge")).to_have_text("Disabled")
    expect(count(page)).to_have_text("3")
    expect(secret_panel(page)).to_have_count(1)
    expect(secret_panel(page).locator(".secret-value")).to_be_hidden()  # masked in the picture
    expect(secret_panel(page).locator(".secret-dots")).to_be_visible()
    expect(page.locator(".who")).to_contain_text(EMAIL)
    expect(page.locator("#notices")).to_be_empty()
    assert axe() == []
    page.evaluate("document.activeElement.blur()")
    page.mouse.move(0, 0)

    # The 1200x800 window, grown to the page's height so the whole table is in the picture.
    data = page.screenshot(path=SCREENSHOT, full_page=True, animations="disabled", caret="hide")

    width, height = png_size(data)
    assert width == WIDTH
    assert HEIGHT <= height <= 1.75 * HEIGHT  # the create form and each row hold a note too
    bottom = page.evaluate("document.querySelector('#key-table').getBoundingClientRect().bottom")
    assert bottom + page.evaluate("scrollY") <= height
    assert SCREENSHOT.read_bytes() == data
