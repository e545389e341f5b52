# ruff: noqa: F811 - pytest fixtures are imported, then named as test arguments
"""Behind an identity-aware proxy with the App Services bridge on, over HTTP (live_server).

A browser's first keys page, without a session, gets one redirect (which sets the session
cookie) and then, when the cookie comes back, one bridge sign-in and its keys. A client that keeps
no cookies (a script or monitor behind the proxy, a browser with cookies blocked) used to get a
redirect to the same URL forever, each hop a new session row, a sign-in audit row and an App
Services sign-in; now it gets a page saying why, after one short-lived session and no upstream
request. Every request carries a fresh assertion, as the proxy adds one to each.
"""

from __future__ import annotations

import html
import logging
import time
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.contrib.sessions.models import Session
from django.core import signing
from django.test import RequestFactory
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme

from keyadmin.appservices.connection import SESSION_KEY as CONNECTION_KEY
from keyadmin.metrics import REGISTRY
from keyadmin.models import AuditEvent, Staff
from keyadmin.sso import cookie_check
from tests.sso.fixtures import (  # noqa: F401 - fixtures
    OPERATORS,
    STAFF,
    jwks_server,
    keys,
    mint,
    use_assertion_mode,
)
from tests.sso.test_bridge import bridge_on, bridge_server, upstream  # noqa: F401 - fixtures

pytestmark = pytest.mark.django_db(transaction=True)

HEADER = "Cf-Access-Jwt-Assertion"
KEYS = "/keys/"
NEEDED = "keyadmin needs its session cookie"
NOTHING_CHANGED = "keyadmin had to start your session again, so nothing was changed. Try again."
A_KEY_ID = "0123456789abcdef01234567"


class Proxy:
    """The identity-aware proxy in front of keyadmin: each request gets a fresh assertion.

    `client(cookies=True)` is a browser (its cookie jar kept between requests); without cookies,
    a client that sends none, ever. Redirects are never followed behind the test's back.
    """

    def __init__(self, base_url: str, keys) -> None:
        self.base_url = base_url
        self.keys = keys
        self.assertions: list[str] = []

    def client(self, *, cookies: bool, subject: str = "alice"):
        http = requests.Session()
        http.trust_env = False

        def send(
            path: str, method: str = "GET", headers: dict | None = None, *, raw=False, **kwargs
        ):
            assertion = mint(self.keys, subject=subject, groups=[STAFF, OPERATORS])
            self.assertions.append(assertion)
            sent = {HEADER: assertion, **(headers or {})}
            if not cookies:
                http.cookies.clear()
            request = requests.Request(method, self.base_url + path, headers=sent, **kwargs)
            prepared = http.prepare_request(request)
            if raw:  # as written: requests would decode %2D and the like in the path and query
                prepared.url = self.base_url + path
            answer = http.send(prepared, allow_redirects=False, timeout=30)
            if not cookies:
                http.cookies.clear()
            return answer

        send.cookies = http.cookies
        return send


def follow(send, path: str, limit: int = 20) -> list[requests.Response]:
    """Follow redirects as a browser does (it gives up after about 20): every answer, in order."""
    answers = []
    while len(answers) < limit:
        answer = send(path)
        answers.append(answer)
        if answer.status_code not in (301, 302, 303, 307, 308):
            break
        path = answer.headers["Location"]
        assert path.startswith("/") and not path.startswith("//")  # this site, a path
    return answers


def statuses(answers) -> list[int]:
    return [answer.status_code for answer in answers]


def page(answer) -> str:
    return html.unescape(answer.text)


def signins(outcome: str) -> float:
    labels = {"mode": "assertion", "outcome": outcome}
    return REGISTRY.get_sample_value("keyadmin_staff_signins_total", labels) or 0


def stored_sessions() -> list[dict]:
    return [row.get_decoded() for row in Session.objects.all()]


@pytest.fixture
def proxy(bridge_on, upstream, jwks_server, keys, live_server):
    use_assertion_mode(bridge_on, jwks_server.url, HEADER)
    bridge_on.KEYADMIN_ROLE_GROUPS_OPERATOR = [OPERATORS]
    upstream.reset_stats()
    return Proxy(live_server.url, keys)


def test_a_browser_gets_one_redirect_then_one_bridge_sign_in_then_its_keys(proxy, upstream):
    browser = proxy.client(cookies=True)

    first = browser(KEYS)

    assert first.status_code == 302
    location = first.headers["Location"]
    assert urlsplit(location).path == KEYS
    assert list(parse_qs(urlsplit(location).query)) == [cookie_check.PARAM]
    assert f"Max-Age={cookie_check.MAX_AGE_SECONDS};" in first.headers["Set-Cookie"]
    # Nothing asked upstream and nothing audited until the cookie comes back.
    assert upstream.request_count() == 0
    assert not AuditEvent.objects.exists()
    (opened,) = stored_sessions()
    assert CONNECTION_KEY not in opened

    second = browser(location)

    assert second.status_code == 200
    assert "API keys" in page(second)
    assert f"Max-Age={settings.SESSION_COOKIE_AGE};" in second.headers["Set-Cookie"]  # a shift
    assert upstream.request_count("login") == 1
    # The mark is gone from what the page built from its own URL (the language form's `next`).
    assert cookie_check.PARAM not in second.text
    assert 'name="next" value="/keys/"' in second.text
    assert browser(KEYS).status_code == 200
    assert browser("/_test/whoami/").json()["subject"] == "alice"

    assert upstream.request_count("login") == 1
    assert Session.objects.count() == 1
    assert Session.objects.get().expire_date > timezone.now() + timedelta(hours=1)
    assert AuditEvent.objects.filter(action="signin", outcome="ok").count() == 1
    assert AuditEvent.objects.filter(action="appservices-signin", outcome="ok").count() == 1
    assert not AuditEvent.objects.filter(outcome="denied").exists()


def test_a_client_without_cookies_is_told_why_instead_of_redirected_forever(
    proxy, upstream, caplog
):
    caplog.set_level(logging.DEBUG)
    script = proxy.client(cookies=False)
    denied_before = signins("denied")

    answers = follow(script, KEYS)

    assert statuses(answers) == [302, 403]
    refused = answers[-1]
    text = page(refused)
    assert NEEDED in text
    host = urlsplit(proxy.base_url).netloc
    assert f'Allow cookies for <strong translate="no">{host}</strong> in your browser' in text
    assert "A script or monitor must keep the cookies keyadmin sets" in text
    assert 'href="/keys/">Try again</a>' in refused.text  # the page without the mark
    assert "no-store" in refused.headers["Cache-Control"]
    assert "sessionid" not in refused.cookies
    # One session, opened by the redirect, never signed in: no App Services sign-in, no
    # refresh token in a row nobody will use, gone in two minutes.
    assert upstream.request_count() == 0
    (opened,) = Session.objects.all()
    assert CONNECTION_KEY not in opened.get_decoded()
    assert opened.expire_date <= timezone.now() + timedelta(seconds=cookie_check.MAX_AGE_SECONDS)
    assert not AuditEvent.objects.filter(action="signin", outcome="ok").exists()
    denied = AuditEvent.objects.get(action="signin", outcome="denied")
    assert denied.staff_subject == "alice"
    assert denied.detail == "the session cookie did not come back"

    # Each visit costs one such session; the trail keeps one refusal a minute, metrics all.
    for _ in range(2):
        assert statuses(follow(script, KEYS)) == [302, 403]

    assert Session.objects.count() == 3
    assert upstream.request_count() == 0
    assert AuditEvent.objects.filter(action="signin", outcome="denied").count() == 1
    assert signins("denied") == denied_before + 3
    trail = " ".join(str(v) for row in AuditEvent.objects.values_list() for v in row)
    for assertion in proxy.assertions:
        assert assertion not in trail
        assert assertion not in caplog.text


def test_a_mark_means_nothing_for_someone_else_altered_or_old(proxy):
    alice = proxy.client(cookies=False, subject="alice")
    bob_location = proxy.client(cookies=False, subject="bob")(KEYS).headers["Location"]
    alice_location = alice(KEYS).headers["Location"]
    altered = alice_location[:-2] + ("AA" if not alice_location.endswith("AA") else "BB")
    signer = cookie_check._signer(Staff.objects.get(subject="alice").user)
    long_ago = int(time.time()) - cookie_check.MAX_AGE_SECONDS - 5
    signer.timestamp = lambda: signing.b62_encode(long_ago)
    old = f"{KEYS}?{cookie_check.PARAM}={signer.sign('1')}"

    # A link someone else made, or one kept from before, starts a visit afresh: no error page.
    for location in (bob_location, altered, old):
        again = alice(location)
        assert again.status_code == 302, location
        assert again.headers["Location"] != location

    assert alice(alice_location).status_code == 403  # her own, fresh: the cookie did not come


def test_a_signed_in_browser_ignores_a_mark_in_a_link(proxy):
    browser = proxy.client(cookies=True)
    location = follow(browser, KEYS)[0].headers["Location"]
    script_location = proxy.client(cookies=False)(KEYS).headers["Location"]

    for link in (location, script_location, f"{KEYS}?{cookie_check.PARAM}=anything"):
        answer = browser(link)
        assert answer.status_code == 200
        assert NEEDED not in page(answer)


def test_the_redirect_keeps_the_query_and_stays_on_this_site(proxy):
    script = proxy.client(cookies=False)

    first = script(f"{KEYS}?q=a%20b&status=disabled&{cookie_check.PARAM}=forged")
    location = first.headers["Location"]

    parts = urlsplit(location)
    assert (parts.scheme, parts.netloc, parts.path) == ("", "", KEYS)
    query = parse_qs(parts.query)
    assert query["q"] == ["a b"] and query["status"] == ["disabled"]
    assert len(query[cookie_check.PARAM]) == 1 and query[cookie_check.PARAM] != ["forged"]
    refused = script(location)
    assert refused.status_code == 403
    assert 'href="/keys/?q=a+b&amp;status=disabled"' in refused.text
    # A path that would name another host in a Location never gets that far.
    answer = script("//evil.example/keys/")
    assert not answer.headers.get("Location", "").startswith("//")


def test_a_mark_whose_name_is_percent_encoded_is_taken_out_too(proxy):
    browser = proxy.client(cookies=True)
    assert statuses(follow(browser, KEYS)) == [302, 200]
    encoded = cookie_check.PARAM.replace("-", "%2D")

    answer = browser(f"{KEYS}?q=a&{encoded}=forged", raw=True)

    # The QueryDict every view reads decodes the name: it was the mark, and links built from
    # the page (the language form's `next`) used to carry it on.
    assert answer.status_code == 200
    assert 'name="next" value="/keys/?q=a"' in answer.text
    assert cookie_check.PARAM not in answer.text and "forged" not in answer.text


@pytest.mark.parametrize(
    ("query", "left", "mark"),
    [
        ("q=1&session%2Dcheck=abc", "q=1", "abc"),
        ("session%2dcheck=abc&q=1", "q=1", "abc"),
        ("q=session-check", "q=session-check", ""),  # only a value
        ("my-session-check=1", "my-session-check=1", ""),  # another parameter's name
    ],
)
def test_strip_takes_out_the_mark_however_its_name_is_written(query, left, mark):
    request = RequestFactory().get(f"/keys/?{query}")

    cookie_check.strip(request)

    assert (request.META["QUERY_STRING"], request.cookie_check_mark) == (left, mark)
    assert cookie_check.PARAM not in request.GET
    assert request.get_full_path() == f"/keys/?{left}"


@pytest.mark.parametrize("path", ["//evil.example/keys/", "/\\evil.example/keys/", "///x"])
def test_the_target_is_a_path_on_this_site_whatever_the_path(path):
    request = RequestFactory().get("/keys/", {"q": "1"})
    request.path = path  # what the client asked for (the factory would read "//x" as a host)
    request.user = AnonymousUser()
    cookie_check.strip(request)

    for target in (cookie_check.this_page(request), cookie_check.redirect_to_self(request).url):
        assert target.startswith("/") and target[1] not in "/\\", target
        assert url_has_allowed_host_and_scheme(target, allowed_hosts=None)
        assert urlsplit(target).netloc == ""


def test_htmx_without_a_session_reloads_the_page_instead_of_swapping_a_redirect(proxy, upstream):
    script = proxy.client(cookies=False)

    answer = script(KEYS, headers={"HX-Request": "true", "HX-Current-URL": proxy.base_url + KEYS})

    assert answer.status_code == 200
    assert answer.headers["HX-Refresh"] == "true"
    assert "Location" not in answer.headers
    assert not Session.objects.exists()
    assert not AuditEvent.objects.exists()
    assert upstream.request_count() == 0


@pytest.mark.parametrize("htmx", [True, False], ids=["htmx", "form"])
def test_an_action_whose_session_ended_changes_nothing_and_says_so(proxy, upstream, htmx):
    browser = proxy.client(cookies=True)
    assert statuses(follow(browser, KEYS)) == [302, 200]
    csrf = browser.cookies["csrftoken"]
    Session.objects.all().delete()  # expired, and removed by the cleanup
    upstream.reset_stats()
    headers = {"X-CSRFToken": csrf}
    if htmx:
        headers |= {"HX-Request": "true", "HX-Current-URL": proxy.base_url + KEYS}

    answer = browser(f"/keys/{A_KEY_ID}/disable/", method="POST", headers=headers)

    if htmx:
        assert (answer.status_code, answer.headers["HX-Refresh"]) == (200, "true")
    else:
        assert (answer.status_code, answer.headers["Location"]) == (302, KEYS)
    reloaded = browser(KEYS)  # htmx reloads the page; a browser follows the redirect
    assert reloaded.status_code == 200
    assert NOTHING_CHANGED in page(reloaded)
    assert upstream.request_count("keys_disable") == 0
    assert upstream.request_count("login") == 1
    assert Session.objects.count() == 1


def test_a_session_never_signed_in_ends_without_a_sign_out_row(proxy):
    browser = proxy.client(cookies=True, subject="alice")
    browser(KEYS)  # opened, waiting for its cookie
    bob = proxy.client(cookies=True, subject="bob")
    bob.cookies.update(browser.cookies)

    assert bob("/_test/whoami/").json()["subject"] == "bob"  # the same browser, another subject

    assert not AuditEvent.objects.filter(action="signout").exists()
    assert not AuditEvent.objects.filter(action="signin", staff_subject="alice").exists()
