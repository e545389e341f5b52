"""The dashboard in front of a hostile App Services (tests/hostile.py): every answer that cannot
be one is explained in place, never a 500, and a slow one ends at the deadline. The staff member
signs in through the local App Services server; then their session's App Services host is
pointed at the hostile one, as a location answer could have done."""

from __future__ import annotations

import json
import time

import pytest

from keyadmin.appservices import MAX_KEYS_PER_USER
from tests.hostile import MB, Answer, HostileUpstream, gzip_bomb, json_answer
from tests.support import CREATE_URL, HTMX, KEYS_URL, SIGNIN_URL, connected, sign_in_staff

PATIENCE = 10.0  # seconds, next to a 1.5 s deadline
LIST = "GET /api/client/v2.0/auth/api_keys"
CREATE = "POST /api/client/v2.0/auth/api_keys"
UNREADABLE = "App Services sent an answer keyadmin cannot read"
TOO_LARGE = "App Services sent an answer larger than keyadmin accepts"


@pytest.fixture
def hostile(client, emulator, user_credentials, settings):
    server = HostileUpstream().start()
    settings.APPSERVICES_DEADLINE = 1.5
    settings.APPSERVICES_TIMEOUT = (1.0, 1.2)
    connected(client, user_credentials)
    session = client.session
    session["appservices"] = {**session["appservices"], "hostname": server.url}
    session.save()
    yield server
    server.stop()


def key(number: int, name: str = "") -> dict:
    name = name or f"k-{number}"
    return {"_id": f"65f0a1b2c3d4e5f6{number:08x}", "name": name, "disabled": False}


SURROGATE_NAME = json.dumps([key(1, "x")]).replace('"x"', '"\\ud800"').encode()
# Made when a test runs, not when tests are collected (the bomb takes a moment to build).
LIST_ANSWERS = {
    "nested": (lambda: Answer(body=b"[" * 100_000 + b"]" * 100_000), UNREADABLE),
    "surrogate-name": (lambda: Answer(body=SURROGATE_NAME), UNREADABLE),
    "too-many-keys": (
        lambda: json_answer([key(n) for n in range(MAX_KEYS_PER_USER + 1)]),
        UNREADABLE,
    ),
    "50-mb": (lambda: Answer(body=b"[", stream_zeros=50 * MB), TOO_LARGE),
    "gzip-bomb": (lambda: Answer(body=gzip_bomb(), content_encoding="gzip"), TOO_LARGE),
}


@pytest.mark.parametrize("htmx", [False, True], ids=["page", "htmx"])
@pytest.mark.parametrize("answer", LIST_ANSWERS)
def test_the_key_list_explains_an_answer_that_cannot_be_one(client, hostile, answer, htmx):
    make_answer, says = LIST_ANSWERS[answer]
    hostile.answer(LIST, make_answer())

    response = client.get(KEYS_URL, headers=HTMX if htmx else {})

    assert response.status_code == 200
    assert says in response.content.decode()


def test_the_key_list_explains_an_answer_that_never_ends(client, hostile):
    hostile.answer(LIST, Answer(body=b"[", trickle=40, interval=0.5))
    started = time.monotonic()

    response = client.get(KEYS_URL)

    assert time.monotonic() - started < PATIENCE
    assert response.status_code == 200
    assert "App Services did not answer in time" in response.content.decode()


def test_a_create_past_the_deadline_goes_down_the_lost_create_path(client, hostile):
    hostile.answer(CREATE, Answer(body=b"{", trickle=40, interval=0.5))
    hostile.answer(LIST, json_answer([]))
    started = time.monotonic()

    response = client.post(CREATE_URL, {"name": "slow-one"}, headers=HTMX)

    assert time.monotonic() - started < PATIENCE
    assert response.status_code == 200
    assert "so it was most likely not created" in response.content.decode()
    assert [r.split(" ")[0] for r in hostile.requests] == ["POST", "GET"]  # never a second create


@pytest.mark.parametrize(
    "data",
    ['{"email": "\\ud800@example.com"}', '{"email": "a@example.com", "name": "\\u0007"}'],
    ids=["lone-surrogate", "control-character"],
)
def test_a_profile_no_page_can_show_is_refused_before_it_reaches_the_session(
    client, emulator, user_credentials, data
):
    sign_in_staff(client)
    email, password = user_credentials
    emulator.add_fault(
        route="profile",
        action="status",
        status=200,
        content_type="application/json",
        body=f'{{"user_id": "{"0" * 24}", "type": "normal", "identities": [], "data": {data}}}',
    )

    response = client.post(
        SIGNIN_URL, {"provider": "local-userpass", "email": email, "password": password}
    )

    assert response.status_code == 200
    assert UNREADABLE in response.content.decode()
    assert "appservices" not in client.session
    assert client.get(KEYS_URL).status_code == 302  # to the sign-in page: the session still works
