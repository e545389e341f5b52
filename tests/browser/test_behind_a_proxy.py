# ruff: noqa: F811 - pytest fixtures are imported, then named as test arguments
"""Chromium behind an identity-aware proxy, with the App Services bridge on.

The proxy is played by an extra header on every request, a fresh assertion (tests/sso/fixtures.py).
With cookies, the first keys page opens the session with one redirect and its mark leaves the
address bar. With the site's cookies blocked (every Set-Cookie removed before Chromium sees it,
as a browser blocking them ignores them), the page says keyadmin needs its session cookie,
where Chromium used to give up with ERR_TOO_MANY_REDIRECTS.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.support import KEYS_URL
from tests.sso.fixtures import (  # noqa: F401 - fixtures
    OPERATORS,
    STAFF,
    jwks_server,
    keys,
    mint,
    use_assertion_mode,
)
from tests.sso.test_bridge import bridge_on, bridge_server, upstream  # noqa: F401 - fixtures
from tests.sso.test_cookieless import HEADER, NEEDED

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def proxied(page, bridge_on, upstream, jwks_server, keys, live_server):
    use_assertion_mode(bridge_on, jwks_server.url, HEADER)
    page.context.set_extra_http_headers({HEADER: mint(keys, groups=[STAFF, OPERATORS])})
    upstream.reset_stats()
    return page


def test_the_first_keys_page_connects_and_leaves_a_clean_address(
    proxied, live_server, upstream, axe
):
    proxied.goto(live_server.url + KEYS_URL)

    expect(proxied.get_by_role("heading", level=1, name="API keys")).to_be_visible()
    expect(proxied).to_have_url(live_server.url + KEYS_URL)
    assert upstream.request_count("login") == 1
    assert axe() == []


def test_with_cookies_blocked_the_page_says_why(proxied, live_server, upstream, problems, axe):
    def without_cookies(route):
        # route.fetch shares the context's cookie jar: emptied before and after each request.
        proxied.context.clear_cookies()
        answer = route.fetch(max_redirects=0)
        proxied.context.clear_cookies()
        headers = {k: v for k, v in answer.headers.items() if k.lower() != "set-cookie"}
        route.fulfill(response=answer, headers=headers)

    proxied.route(f"{live_server.url}/**", without_cookies)
    problems.expect("403")

    proxied.goto(live_server.url + KEYS_URL)

    expect(proxied.get_by_role("heading", level=1, name=NEEDED)).to_be_visible()
    assert axe() == []
    problems.expect("403")
    proxied.get_by_role("link", name="Try again").click()
    expect(proxied.get_by_role("heading", level=1, name=NEEDED)).to_be_visible()
    expect(proxied).to_have_url(live_server.url + KEYS_URL)
    assert upstream.request_count() == 0
