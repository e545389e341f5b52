"""Hostile sequences over real HTTP: keyadmin under gunicorn (production settings), on loopback.

Two tabs of one browser session (a page rendered for alice, "Switch user" to bob, the old page's
create form posted), and a create form sent twice while the first sending still waits on App
Services, as a double click without JavaScript does.
"""

from __future__ import annotations

import re
import secrets
import threading
import time

import pytest

from tests.production import (
    SESSION_COOKIE,
    Browser,
    keyadmin_server,
    manage,
    production_env,
    staff_session,
)
from tests.support import rendered_fields

HTMX = {"HX-Request": "true"}
SECRET_PANEL = re.compile(r'<code id="secret-value-([0-9a-f]{24})"')


@pytest.fixture
def served(tmp_path, emulator):
    env = production_env(tmp_path, emulator.url, KEYADMIN_SSL_REDIRECT="false")
    manage(env, "migrate", "--noinput", "--verbosity", "0")
    session_key = staff_session(env, tmp_path, "Pat Support")
    with keyadmin_server(env, tmp_path / "keyadmin.log", threads=4) as server:
        browser = Browser({SESSION_COOKIE: session_key})
        yield server, browser
        browser.close()


def sign_in(server, browser, credentials) -> None:
    email, password = credentials
    assert browser.get(f"{server.url}/appservices/sign-in/").status_code == 200
    response = browser.post(
        f"{server.url}/appservices/sign-in/",
        data={"provider": "local-userpass", "email": email, "password": password},
    )
    assert response.status_code == 302, server.log_tail()


def test_over_http_a_tab_rendered_for_alice_creates_nothing_for_bob(
    served, emulator, user_credentials
):
    server, browser = served
    bob = (f"bob-{secrets.token_hex(4)}@example.com", secrets.token_urlsafe(12))
    emulator.create_user(*bob)
    sign_in(server, browser, user_credentials)
    alice_page = browser.get(f"{server.url}/keys/").text
    sign_in(server, browser, bob)  # the other tab
    emulator.reset_stats()

    form = {**rendered_fields(alice_page, "create-form"), "name": "old-tab"}
    plain = browser.post(f"{server.url}/keys/new/", data=form)
    fragment = browser.post(f"{server.url}/keys/new/", data=form, headers=HTMX)

    assert plain.status_code == 409, server.log_tail()
    assert fragment.status_code == 200
    for answer in (plain.text, fragment.text):
        assert f"This page was for {user_credentials[0]}" in answer
        assert f"you are now connected as {bob[0]}" in answer
    assert emulator.request_count() == 0
    assert emulator.keys_of(bob[0]) == [] and emulator.keys_of(user_credentials[0]) == []


def test_over_http_a_double_submit_while_the_first_works_offers_the_first_key(
    served, emulator, user_credentials
):
    server, browser = served
    sign_in(server, browser, user_credentials)
    form = {**rendered_fields(browser.get(f"{server.url}/keys/").text, "create-form")}
    form["name"] = "double-click"
    emulator.set_latency(600)  # the first create is still on its way when the second arrives
    answers: dict[str, str] = {}
    tabs = {"first": browser, "second": Browser(dict(browser.cookies))}  # one cookie jar

    def send(which: str) -> None:
        answers[which] = tabs[which].post(f"{server.url}/keys/new/", data=form).text

    first = threading.Thread(target=send, args=("first",))
    first.start()
    time.sleep(0.2)
    send("second")
    first.join(timeout=30)
    emulator.set_latency(0)
    tabs["second"].close()

    [key] = emulator.keys_of(user_credentials[0])
    assert SECRET_PANEL.findall(answers["first"]) == [key["_id"]], server.log_tail()
    assert "was created moments ago" in answers["second"]
    assert f'formaction="/keys/{key["_id"]}/delete/"' in answers["second"]
    assert 'class="secret-value"' not in answers["second"]
