"""The checks every browser test relies on can fail: CSP violations are seen, axe finds problems."""

from __future__ import annotations

from tests.browser.support import SIGNIN_URL


def wait_for_errors(page, problems, count: int) -> None:
    for _ in range(40):
        if len(problems.errors) >= count:
            return
        page.wait_for_timeout(50)


def test_csp_violations_are_reported_and_axe_finds_violations(
    staff_page, live_server, problems, axe
):
    page = staff_page
    page.goto(live_server.url + SIGNIN_URL)
    assert axe() == []

    page.evaluate(
        """() => {
            const script = document.createElement('script');
            script.textContent = 'window.inlineRan = true';
            document.head.appendChild(script);
            document.querySelector('h1').setAttribute('style', 'color: red');
        }"""
    )
    wait_for_errors(page, problems, 2)

    assert page.evaluate("window.inlineRan") is None  # the policy held
    assert any("Content Security Policy" in e and "script" in e for e in problems.errors)
    assert any("Content Security Policy" in e and "style" in e for e in problems.errors)
    problems.errors.clear()  # seen: this test wanted them

    page.evaluate("document.querySelector('main').append(document.createElement('button'))")
    assert [v["id"] for v in axe()] == ["button-name"]
