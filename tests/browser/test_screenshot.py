"""The README's screenshot, taken from a real run: four keys with their notes and review dates, a
rotation under way (the old key still enabled, superseded by its successor), one new secret
still masked.
"""

from __future__ import annotations

import os
import struct
import tempfile
from datetime import timedelta
from pathlib import Path

from django.utils import timezone
from playwright.sync_api import expect

from keyadmin.appservices.connection import SESSION_KEY
from keyadmin.models import KeyNote
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


def write_notes(client, *, ci: str, ci_next: str, nightly: str) -> None:
    """The notes staff would have written, straight into KeyNote: which of them the page shows
    (purpose, ticket, owner, review badges, "superseded by") is up to the templates of the day.

    ci-runner is being rotated: its successor ci-runner-2 exists, the old key is still enabled.
    Review dates: ci-runner's is past (overdue), nightly-backup's is days away (due).
    """
    connected = client.session[SESSION_KEY]
    today = timezone.localdate()
    mine = {"app_id": connected["app_id"], "appservices_user_id": connected["user_id"]}
    ci_note = {"purpose": "Deploys from CI", "owner": "platform-team@example.com"}
    KeyNote.objects.create(
        **mine,
        **ci_note,
        key_id=ci,
        ticket="SUP-1432",
        review_by=today - timedelta(days=12),
        superseded_by=ci_next,
    )
    KeyNote.objects.create(
        **mine,
        **ci_note,
        key_id=ci_next,
        ticket="SUP-1502",
        review_by=today + timedelta(days=90),
        supersedes=ci,
    )
    KeyNote.objects.create(
        **mine,
        key_id=nightly,
        purpose="Nightly export to the data lake",
        ticket="SUP-1210",
        owner="data-team@example.com",
        review_by=today + timedelta(days=5),
    )


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
    ci, nightly, ci_next = seed(staff_client, "ci-runner", "nightly-backup", "ci-runner-2")
    staff_client.post(
        key_url(nightly, "disable"), row_post(nightly, "nightly-backup"), headers=HTMX
    )
    write_notes(staff_client, ci=ci, ci_next=ci_next, nightly=nightly)
    give_session(page.context, live_server, staff_client)
    page.set_viewport_size({"width": WIDTH, "height": HEIGHT})
    open_keys(page, live_server)
    page.locator("#notices").get_by_role("button", name="Dismiss").click()  # "Connected to …"

    # A plain create for the panel: the rotation shows on the rows (its notes above). Once
    # "Rotate" exists, pressing it on ci-runner could give the panel too, naming the old key.
    create_in_browser(page, "deploy-bot")

    expect(page.locator("#key-rows > tr")).to_have_count(4)
    names = page.locator("#key-rows > tr").evaluate_all("rows => rows.map(r => r.dataset.name)")
    assert names == ["ci-runner", "nightly-backup", "ci-runner-2", "deploy-bot"]
    # by state, not by badge text: review badges may join the status badge once notes show
    expect(row(page, "ci-runner")).to_have_attribute("data-status", "enabled")  # not yet off
    expect(row(page, "nightly-backup")).to_have_attribute("data-status", "disabled")
    expect(count(page)).to_have_text("4")
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
    # Four keys with notes, a rotation and the bulk toolbar: taller than the window, not absurdly.
    assert HEIGHT <= height <= 2.5 * HEIGHT
    bottom = page.evaluate("document.querySelector('#key-table').getBoundingClientRect().bottom")
    assert bottom + page.evaluate("scrollY") <= height
    assert SCREENSHOT.read_bytes() == data
