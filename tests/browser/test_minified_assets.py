"""Production serves keyadmin.js and keyadmin.css minified (keyadmin/staticfiles.py), while the
other browser tests run the sources (tests/settings.py): here the page gets the minified ones and
its scripted behaviour, styles included, still works, with no console error or CSP violation."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import expect

from keyadmin.staticfiles import MINIFIERS
from tests.browser.support import (
    count,
    create_in_browser,
    open_keys,
    row,
    secret_panel,
    seed,
    toggle,
)

STATIC = Path(__file__).resolve().parents[2] / "static"
TYPES = {".js": "text/javascript", ".css": "text/css"}


def serve_minified(page) -> list[str]:
    served: list[str] = []
    for path, minify in MINIFIERS.items():
        source = (STATIC / path).read_text()
        body = minify(source)
        assert len(body) < 0.9 * len(source), path  # comments and indentation are gone

        page.route(f"**/static/{path}", _fulfil_with(body, path, served))
    return served


def _fulfil_with(body: str, path: str, served: list[str]):
    def fulfil(route):
        served.append(path)
        route.fulfill(body=body, content_type=TYPES[Path(path).suffix])

    return fulfil


def test_the_minified_script_and_stylesheet_run_the_keys_page(
    keys_page, live_server, connected_client, emulator
):
    seed(connected_client, "ci-runner")
    served = serve_minified(keys_page)
    page = open_keys(keys_page, live_server)
    assert sorted(served) == sorted(MINIFIERS)

    # The script: live name checks, the secret panel and its dismissal, a row toggled in place.
    page.get_by_label("Key name").fill("ci runner!")
    expect(page.locator("#name-check")).to_have_text("Not allowed in a key name: “space”, “!”")
    create_in_browser(page, "deploy-bot")
    expect(count(page)).to_have_text("2")
    secret_panel(page).get_by_role("button", name="I have stored it").click()
    expect(secret_panel(page)).to_have_count(0)
    toggle(page, "ci-runner", "Disable").click()
    expect(row(page, "ci-runner")).to_have_attribute("data-status", "disabled")
    # The stylesheet: the visually hidden labels stay hidden, the badges get their colours.
    hidden = page.locator("#key-rows .vh").first
    assert hidden.evaluate("e => getComputedStyle(e).position") == "absolute"
    badge = row(page, "ci-runner").locator(".badge-off")
    assert badge.evaluate("e => getComputedStyle(e).backgroundColor") != "rgba(0, 0, 0, 0)"
