# ruff: noqa: F811 - pytest fixtures are imported, then named as test arguments
"""Several requests bringing back the cookie of one pending session at once, over HTTP.

A browser restoring its tabs sends them all together, each with the cookie of the session the
first keys page opened (`keyadmin.sso.session.open_on_return`). Each used to finish the sign-in:
as many App Services logins and sign-in audit rows as tabs, and since the last save won, all
but one refresh token ended in no session row, where neither sign-out nor
end_expired_sessions could revoke it. Now exactly one request signs in, claimed in the session
row (so in every worker and instance), and the others wait for it and get their page.

The bridge's App Services sign-in is held for a moment here, so that the others surely meet it.
"""

from __future__ import annotations

import html
import re
import threading
import time
from datetime import timedelta
from types import SimpleNamespace

import pytest
import requests
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.sessions.models import Session
from django.utils import timezone

from keyadmin.appservices import connection
from keyadmin.appservices.connection import SESSION_KEY as CONNECTION_KEY
from keyadmin.models import AuditEvent
from keyadmin.sso import bridge, session
from tests.sso.fixtures import (  # noqa: F401 - fixtures
    OPERATORS,
    STAFF,
    jwks_server,
    keys,
    mint,
    use_assertion_mode,
)
from tests.sso.test_bridge import REFUSED, bridge_on, bridge_server, upstream  # noqa: F401
from tests.sso.test_cookieless import HEADER, KEYS, NEEDED, page, proxy  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)

COOKIE = "sessionid"
SIGNIN_PAGE = "/appservices/sign-in/"


@pytest.fixture
def held_login(monkeypatch):
    """The bridge's App Services sign-in, held `hold` seconds before it goes upstream."""
    real = bridge.connect
    state = SimpleNamespace(hold=0.8, calls=0, inside=threading.Event(), ended_at=None)

    def held(*args, **kwargs):
        state.calls += 1
        state.inside.set()
        time.sleep(state.hold)
        try:
            return real(*args, **kwargs)
        finally:
            state.ended_at = time.monotonic()

    monkeypatch.setattr(bridge, "connect", held)
    return state


@pytest.fixture
def read_together(monkeypatch):
    """`read_together(n)`: the first n reads of the pending row wait for each other, so that n
    requests all find it unclaimed before any of them writes its claim."""

    def arrange(parties: int) -> None:
        real = session.hotreads.session_data
        met = threading.Barrier(parties, timeout=10)
        first_reads = []

        def read(key):
            stored = real(key)
            if len(first_reads) < parties:
                first_reads.append(key)
                met.wait()
            return stored

        monkeypatch.setattr(session, "hotreads", SimpleNamespace(session_data=read))

    return arrange


def opened(proxy) -> tuple[str, str]:
    """A browser's first keys page: the redirect's Location and the pending session's key."""
    first = proxy.client(cookies=True)(KEYS)
    assert first.status_code == 302
    key = first.cookies[COOKIE]
    # As if the redirect had waited a minute: every request's copy of the session is then
    # changed (its last-seen time) and saved at the end, unless it is left alone.
    stored = SessionStore(key)
    stored[session.LAST_SEEN_KEY] = int(time.time()) - session.TOUCH_SECONDS - 1
    stored.save()
    return first.headers["Location"], key


def send(proxy, key: str, path: str, headers: dict | None = None) -> requests.Response:
    """One tab: its own connection, the pending session's cookie, a fresh assertion."""
    http = requests.Session()
    http.trust_env = False
    http.cookies.set(COOKIE, key)
    assertion = mint(proxy.keys, subject="alice", groups=[STAFF, OPERATORS])
    sent = {HEADER: assertion, **(headers or {})}
    return http.get(proxy.base_url + path, headers=sent, allow_redirects=False, timeout=60)


def at_once(proxy, key: str, paths: list[str]) -> tuple[list[requests.Response], list[float]]:
    """Every path requested together (a browser restoring its tabs): answers, and when each
    request was sent."""
    ready = threading.Barrier(len(paths))
    answers: list = [None] * len(paths)
    sent_at = [0.0] * len(paths)

    def tab(index: int, path: str) -> None:
        ready.wait()
        sent_at[index] = time.monotonic()
        answers[index] = send(proxy, key, path)

    threads = [threading.Thread(target=tab, args=pair) for pair in enumerate(paths)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return answers, sent_at


def reload_of(answer: requests.Response) -> str:
    """Where the "Signing you in" page reloads to, by itself (its meta refresh)."""
    found = re.search(r'<meta http-equiv="refresh" content="(\d+); url=([^"]*)">', answer.text)
    assert found, "no meta refresh on the page"
    assert int(found[1]) == session.RELOAD_SECONDS
    return html.unescape(found[2])


def only_session() -> tuple[str, dict]:
    (row,) = Session.objects.all()
    return row.session_key, row.get_decoded()


def oks(action: str) -> int:
    return AuditEvent.objects.filter(action=action, outcome="ok").count()


def test_tabs_restored_at_once_sign_in_once_and_each_gets_its_page(proxy, upstream, held_login):
    location, key = opened(proxy)
    upstream.reset_stats()

    answers, sent_at = at_once(proxy, key, [location, KEYS, KEYS, f"{KEYS}?q=a"])

    assert max(sent_at) < held_login.ended_at  # all of them met the sign-in under way
    assert [answer.status_code for answer in answers] == [200, 200, 200, 200]
    for answer in answers:
        assert "API keys" in page(answer)
        assert NEEDED not in page(answer)
        assert answer.cookies.get(COOKIE, key) == key  # one session for every tab
    assert held_login.calls == 1
    assert upstream.request_count("login") == 1
    assert oks("signin") == 1
    assert oks("appservices-signin") == 1
    # The one refresh token is in the one session row, where sign-out and the cleanup find it:
    # no request saved a copy of the session from before the sign-in over it.
    stored_key, data = only_session()
    assert stored_key == key
    assert CONNECTION_KEY in data
    assert session.PENDING_KEY not in data and session.CLAIM_KEY not in data
    assert Session.objects.get().expire_date > timezone.now() + timedelta(hours=1)


def test_of_requests_that_all_found_the_session_unclaimed_one_signs_in(
    proxy, upstream, read_together
):
    location, key = opened(proxy)
    upstream.reset_stats()
    read_together(3)

    answers, _ = at_once(proxy, key, [location, KEYS, KEYS])

    # Each had read the row as the first request left it; the database let one claim it.
    assert [answer.status_code for answer in answers] == [200, 200, 200]
    assert upstream.request_count("login") == 1
    assert oks("signin") == 1
    assert CONNECTION_KEY in only_session()[1]


def test_a_page_that_fails_after_the_sign_in_leaves_its_token_where_sign_out_finds_it(
    proxy, upstream, monkeypatch
):
    from keyadmin.keys import guards

    def broken(request):
        raise RuntimeError("a page that fails")

    location, key = opened(proxy)
    upstream.reset_stats()
    monkeypatch.setattr(guards, "end_orphaned_acting", broken)  # the middleware after sign-in

    assert send(proxy, key, location).status_code == 500

    # Django saves no session after a 500: the sign-in saved it before the page ran.
    data = only_session()[1]
    assert CONNECTION_KEY in data and session.PENDING_KEY not in data
    monkeypatch.undo()
    assert send(proxy, key, KEYS).status_code == 200
    assert upstream.request_count("login") == 1


def test_a_tab_that_waits_in_vain_is_sent_back_to_its_page(
    proxy, upstream, held_login, monkeypatch
):
    monkeypatch.setattr(session, "WAIT_SECONDS", 0.3)
    held_login.hold = 2.0
    location, key = opened(proxy)
    upstream.reset_stats()
    htmx = {"HX-Request": "true", "HX-Current-URL": proxy.base_url + KEYS}
    winner = {}
    signing_in = threading.Thread(target=lambda: winner.update(answer=send(proxy, key, location)))
    signing_in.start()
    assert held_login.inside.wait(10)

    plain = send(proxy, key, f"{KEYS}?q=a")
    reloaded = send(proxy, key, KEYS, headers=htmx)

    assert signing_in.is_alive()  # these answers came while the sign-in was under way
    # A page that reloads its own address by itself, a moment later: no redirect hops (a
    # browser stops following them before a slow sign-in ends), no error, no script (CSP).
    assert plain.status_code == 503
    assert plain.headers["Retry-After"] == str(session.RELOAD_SECONDS)
    assert "Signing you in" in page(plain)
    assert reload_of(plain) == f"{KEYS}?q=a"
    assert "<script" not in page(plain)
    assert (reloaded.status_code, reloaded.headers["HX-Refresh"]) == (200, "true")
    for answer in (plain, reloaded):
        assert COOKIE not in answer.cookies  # their copies of the session were not saved
        assert "no-store" in answer.headers["Cache-Control"]
    assert session.CLAIM_KEY in only_session()[1]  # the claim is still the sign-in's
    signing_in.join(30)
    assert winner["answer"].status_code == 200

    followed = send(proxy, key, reload_of(plain))

    assert followed.status_code == 200
    assert "API keys" in page(followed)
    assert upstream.request_count("login") == 1
    assert oks("signin") == 1
    assert CONNECTION_KEY in only_session()[1]


def test_when_the_app_services_sign_in_is_refused_no_tab_is_kept_waiting(
    proxy, upstream, bridge_on
):
    bridge_on.KEYADMIN_BRIDGE_AUDIENCE = "another-app"  # App Services answers 401 unauthorized
    location, key = opened(proxy)
    upstream.reset_stats()
    started = time.monotonic()

    answers, _ = at_once(proxy, key, [location, KEYS, KEYS])

    assert time.monotonic() - started < session.WAIT_SECONDS
    # Signed in to keyadmin, not to App Services: every tab goes where the staff member
    # connects by hand (docs/sso.md), and none tries the bridge again.
    assert [(answer.status_code, answer.headers["Location"]) for answer in answers] == [
        (302, SIGNIN_PAGE)
    ] * 3
    assert upstream.request_count("login") == 1
    assert oks("signin") == 1
    failed = AuditEvent.objects.get(action="appservices-signin")
    assert (failed.outcome, failed.detail) == ("failed", "SignInTokenRefused")
    data = only_session()[1]
    assert session.PENDING_KEY not in data and session.CLAIM_KEY not in data
    signin_page = send(proxy, key, SIGNIN_PAGE)
    assert signin_page.status_code == 200
    assert REFUSED in page(signin_page)


def test_a_sign_in_that_crashed_is_tried_again_by_the_next_request(proxy, upstream, monkeypatch):
    real_mint = bridge.mint
    failures = [RuntimeError("the signing key could not be read")]

    def mint_once(*args, **kwargs):
        if failures:
            raise failures.pop()
        return real_mint(*args, **kwargs)

    monkeypatch.setattr(bridge, "mint", mint_once)
    location, key = opened(proxy)
    upstream.reset_stats()

    crashed = send(proxy, key, location)

    assert crashed.status_code == 500
    data = only_session()[1]
    assert data[session.PENDING_KEY] is True  # still waiting to be signed in,
    assert session.CLAIM_KEY not in data  # and claimed by nobody

    again = send(proxy, key, KEYS)

    assert again.status_code == 200
    assert "API keys" in page(again)
    assert upstream.request_count("login") == 1
    assert oks("appservices-signin") == 1
    assert oks("signin") == 2  # each attempt, the one that crashed included
    assert CONNECTION_KEY in only_session()[1]


def test_a_claim_whose_request_died_lapses_and_the_next_request_signs_in(
    proxy, upstream, monkeypatch
):
    monkeypatch.setattr(session, "WAIT_SECONDS", 0.3)
    location, key = opened(proxy)
    upstream.reset_stats()

    def claimed(seconds_ago: float) -> None:
        stored = SessionStore(key)
        stored[session.CLAIM_KEY] = {"at": time.time() - seconds_ago, "by": "another request"}
        stored.save()

    claimed(1)  # a request is signing in, as far as the row says
    waited = send(proxy, key, location)

    assert (waited.status_code, reload_of(waited)) == (503, KEYS)  # the mark is gone
    assert upstream.request_count() == 0
    assert not AuditEvent.objects.exists()

    claimed(session._claim_seconds() + 1)  # longer than a sign-in can take: its worker died
    taken_over = send(proxy, key, KEYS)

    assert taken_over.status_code == 200
    assert "API keys" in page(taken_over)
    assert upstream.request_count("login") == 1
    assert oks("signin") == 1
    assert CONNECTION_KEY in only_session()[1]


@pytest.mark.parametrize("planted_data", [{}, {"planted": True}], ids=["empty", "with-data"])
def test_the_key_kept_through_the_sign_in_is_never_one_planted_in_the_browser(
    proxy, upstream, planted_data
):
    """The sign-in keeps the pending session's key (`finish_sign_in` says why): that key is
    always one keyadmin made at this staff member's own first request, never one an attacker
    had the browser send (session fixation)."""
    planted = SessionStore()
    planted.update(planted_data)
    planted.save()

    first = send(proxy, planted.session_key, KEYS)

    key = first.cookies[COOKIE]
    assert key != planted.session_key
    if first.status_code == 302:  # the empty one counts as no session: opened, then signed in
        second = send(proxy, key, first.headers["Location"])
        assert second.cookies.get(COOKIE, key) == key
    assert send(proxy, key, KEYS).status_code == 200
    assert not Session.objects.filter(session_key=planted.session_key).exists()
    assert upstream.request_count("login") == 1


@pytest.mark.parametrize("audit_fails", [False, True], ids=["audited", "audit-insert-fails"])
def test_a_sign_in_that_outlives_its_claim_keeps_nothing_and_revokes_its_own_token(
    proxy, upstream, held_login, monkeypatch, audit_fails
):
    """A claim lapses (`_claim_seconds`) while its sign-in still runs, slower than a sign-in can
    be (retries, a database waiting on a lock, an instance whose clock is behind): the request
    that takes the session over signs in too. Each used to save its session over the other's,
    the last one winning, and the first refresh token ended in no row, valid for 60 days. Now
    the one that lost its claim saves nothing, revokes its own App Services session, and waits
    for the other's sign-in like any other tab."""
    monkeypatch.setattr(session, "_claim_seconds", lambda: 0.5)
    held_login.hold = 1.5  # longer than the claim holds
    real_revoke = connection._revoke
    revoked = []

    def revoke(hostname, refresh_token, allowed_hosts):
        revoked.append((hostname, refresh_token, allowed_hosts))
        return real_revoke(hostname, refresh_token, allowed_hosts)

    monkeypatch.setattr(connection, "_revoke", revoke)
    if audit_fails:
        # Review: the revocation came after the audit row; an insert that raised skipped it.
        real_record = session.audit.record

        def record(request, action, *args, **kwargs):
            if action == "appservices-signout":
                raise RuntimeError("the audit insert failed")
            return real_record(request, action, *args, **kwargs)

        monkeypatch.setattr(session.audit, "record", record)
    location, key = opened(proxy)
    upstream.reset_stats()
    first = {}
    signing_in = threading.Thread(target=lambda: first.update(answer=send(proxy, key, location)))
    signing_in.start()
    assert held_login.inside.wait(10)
    time.sleep(0.7)  # the first request's claim has lapsed; its login is still held

    second = send(proxy, key, KEYS)
    signing_in.join(30)

    for answer in (second,) if audit_fails else (first["answer"], second):
        assert answer.status_code == 200
        assert "API keys" in page(answer)
    assert upstream.request_count("login") == 2
    assert upstream.request_count("session_logout") == 1
    (lost,) = revoked
    # The loser's token is dead upstream (App Services no longer knows it), the winner's is in
    # the one session row, and still works: revoking it now is confirmed.
    assert not real_revoke(*lost)
    stored_key, data = only_session()
    assert stored_key == key
    assert session.PENDING_KEY not in data and session.CLAIM_KEY not in data
    assert connection.revoke_stored(data)
    if not audit_fails:
        signout = AuditEvent.objects.get(action="appservices-signout")
        assert (signout.outcome, signout.detail) == (
            "ok",
            "another request signed this session in",
        )


def test_a_tab_waits_in_the_server_at_most_wait_seconds_however_slow_the_sign_in(
    proxy, upstream, held_login
):
    """Each waiting tab holds a server thread: a slow sign-in must not hold one per restored
    tab for as long as it takes (they could be every thread the server has)."""
    assert session.WAIT_SECONDS <= 2
    held_login.hold = session.WAIT_SECONDS + 2
    location, key = opened(proxy)
    signing_in = threading.Thread(target=send, args=(proxy, key, location))
    signing_in.start()
    assert held_login.inside.wait(10)
    started = time.monotonic()

    waited = send(proxy, key, KEYS)

    assert time.monotonic() - started < session.WAIT_SECONDS + 1
    assert signing_in.is_alive()
    assert waited.status_code == 503 and reload_of(waited) == KEYS
    signing_in.join(30)
    assert send(proxy, key, reload_of(waited)).status_code == 200
    assert upstream.request_count("login") == 1
