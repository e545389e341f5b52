"""The audit page as auditors use it: a wide table of many rows, reachable by keyboard."""

from __future__ import annotations

from playwright.sync_api import expect

from keyadmin import audit
from keyadmin.models import AuditEvent

KEY_ID = "65a1b2c3d4e5f60718293a4b"


def test_the_audit_page_with_many_wide_rows_is_axe_clean_and_scrolls_by_keyboard(
    staff_page, live_server, axe, rf
):
    request = rf.get("/")
    for number in range(60):
        audit.record(
            request,
            AuditEvent.Action.DISABLE,
            audit.OK,
            key_id=KEY_ID,
            key_name=f"integration-key-with-a-long-name-{number:02d}",
            detail="a long detail that makes the table wider than any phone or narrow window",
        )
    staff_page.set_viewport_size({"width": 900, "height": 800})
    staff_page.goto(f"{live_server.url}/audit/")

    region = staff_page.get_by_role("region", name="Audit events, scrollable")
    expect(region).to_be_visible()
    assert axe() == []
    region.focus()
    expect(region).to_be_focused()
    before = region.evaluate("el => el.scrollLeft")
    staff_page.keyboard.press("ArrowRight")
    staff_page.keyboard.press("End")
    assert region.evaluate("el => el.scrollWidth > el.clientWidth"), "the table should overflow"
    # Chromium scrolls on the key press asynchronously: wait for it, bounded.
    staff_page.wait_for_function(
        f"() => document.querySelector('.table-wrap').scrollLeft > {before}", timeout=5000
    )
