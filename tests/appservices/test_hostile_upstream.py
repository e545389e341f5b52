"""The client against a hostile App Services stand-in (tests/hostile.py): every answer is read
within a size cap and a total deadline, and whatever cannot be an answer is `UpstreamGarbage`
or `UpstreamUnavailable`, never an exception a view does not expect."""

from __future__ import annotations

import json
import resource
import time
import zlib

import pytest

from keyadmin import appservices
from keyadmin.appservices import AppServices, UserSession
from keyadmin.appservices.client import MAX_ANSWER_BYTES
from tests.hostile import MB, Answer, HostileUpstream, gzip_bomb, json_answer

# Generous next to the 1.5 s deadline the tests set: what matters is that the call ends near
# the deadline instead of when the server stops (30 s and more).
PATIENCE = 10.0
KEY_ID = "65f0a1b2c3d4e5f601234567"


def key(number: int, name: str | None = None) -> dict:
    name = name or f"k-{number}"
    return {"_id": f"65f0a1b2c3d4e5f6{number:08x}", "name": name, "disabled": False}


@pytest.fixture
def hostile(settings):
    server = HostileUpstream().start()
    settings.APPSERVICES_DEADLINE = 1.5
    settings.APPSERVICES_TIMEOUT = (1.0, 1.2)  # each read would wait for the next byte
    yield server
    server.stop()


@pytest.fixture
def session(hostile) -> UserSession:
    return UserSession(hostile.url, "refresh-token", "access-token")


def timed(call):
    started = time.monotonic()
    try:
        call()
    finally:
        timed.elapsed = time.monotonic() - started


# --- the total deadline ---


def test_an_answer_trickling_a_byte_a_second_is_cut_off_at_the_deadline(hostile, session):
    hostile.answer("/auth/api_keys", Answer(body=b"[", trickle=40, interval=0.5))

    with pytest.raises(appservices.UpstreamUnavailable) as caught:
        timed(session.list_api_keys)

    assert timed.elapsed < PATIENCE
    assert "in time" in caught.value.message


def test_headers_trickling_a_byte_a_second_are_cut_off_at_the_deadline(hostile, session):
    hostile.answer("/auth/api_keys", Answer(trickle=40, trickle_headers=True, interval=0.5))

    with pytest.raises(appservices.UpstreamUnavailable) as caught:
        timed(session.list_api_keys)

    assert timed.elapsed < PATIENCE
    assert "in time" in caught.value.message


def test_a_batch_deadline_cuts_a_call_before_its_own_deadline(hostile, session, settings):
    """`calls_end_by`: a lock-down or bulk action's total deadline caps each of its calls."""
    settings.APPSERVICES_DEADLINE = 30.0
    settings.APPSERVICES_TIMEOUT = (1.0, 30.0)
    hostile.answer("/auth/api_keys", Answer(body=b"[", trickle=40, interval=0.5))

    with (
        pytest.raises(appservices.UpstreamUnavailable) as caught,
        appservices.calls_end_by(time.monotonic() + 1.0),
    ):
        timed(session.list_api_keys)

    assert timed.elapsed < 4.0  # the trickle alone lasts 20 s
    assert "in time" in caught.value.message
    assert appservices.client._call_seconds() == 30.0  # the cap ends with the block


def test_the_deadline_covers_the_retry_of_an_idempotent_call(hostile, session):
    hostile.answer("/auth/api_keys", Answer(body=b"[", trickle=40, interval=0.5))

    with pytest.raises(appservices.UpstreamUnavailable):
        timed(lambda: session.get_api_key(KEY_ID))

    assert timed.elapsed < PATIENCE
    assert len(hostile.requests) == 1


def test_a_body_that_stalls_past_the_read_timeout_is_slow_not_cut_short(hostile, session, settings):
    settings.APPSERVICES_TIMEOUT = (1.0, 0.3)
    settings.APPSERVICES_DEADLINE = 5.0
    hostile.answer("/auth/api_keys", Answer(body=b"[", trickle=1, interval=2.0))

    with pytest.raises(appservices.UpstreamUnavailable) as caught:
        session.list_api_keys()

    assert "in time" in caught.value.message
    assert len(hostile.requests) == 1  # a slow answer is not sent for again


def test_a_create_past_the_deadline_is_an_unknown_outcome_and_never_retried(hostile, session):
    hostile.answer("/auth/api_keys", Answer(body=b"{", trickle=40, interval=0.5))

    with pytest.raises(appservices.CreateOutcomeUnknown):
        timed(lambda: session.create_api_key("slow"))

    assert timed.elapsed < PATIENCE
    assert hostile.requests == ["POST /api/client/v2.0/auth/api_keys"]


def test_a_sign_in_past_the_deadline_is_unavailable(hostile, settings):
    hostile.answer("/location", json_answer({"hostname": hostile.url}))
    hostile.answer("/login", Answer(body=b"{", trickle=40, interval=0.5))

    with pytest.raises(appservices.UpstreamUnavailable):
        timed(lambda: AppServices(base_url=hostile.url).login_email_password("a@x.io", "pw"))

    assert timed.elapsed < PATIENCE


# --- the size cap ---


def test_a_50_mb_answer_is_refused_without_reading_it(hostile, session):
    hostile.answer("/auth/api_keys", Answer(body=b"[", stream_zeros=50 * MB))

    with pytest.raises(appservices.UpstreamGarbage) as caught:
        session.list_api_keys()

    assert "larger than keyadmin accepts" in caught.value.message
    # What the server could write before the client hung up: the cap plus socket buffers.
    assert hostile.body_bytes_written < 16 * MB


def test_an_answer_declaring_a_length_past_the_cap_is_refused(hostile, session):
    hostile.answer("/auth/api_keys", Answer(body=b"[" + b" " * (MAX_ANSWER_BYTES + 1) + b"]"))

    with pytest.raises(appservices.UpstreamGarbage) as caught:
        session.list_api_keys()
    assert "larger than keyadmin accepts" in caught.value.message


def test_a_gzip_bomb_is_not_inflated_past_the_cap(hostile, session):
    bomb = gzip_bomb()  # 300 KB inflating to 300 MB
    hostile.answer("/auth/api_keys", Answer(body=bomb, content_encoding="gzip"))
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KB on Linux

    with pytest.raises(appservices.UpstreamGarbage) as caught:
        session.list_api_keys()

    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before) / 1024
    assert grown_mb < 100
    assert "larger than keyadmin accepts" in caught.value.message


def test_a_small_compressed_answer_is_read(hostile, session):
    packer = zlib.compressobj(6, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    body = packer.compress(json.dumps([key(1)]).encode()) + packer.flush()
    hostile.answer("/auth/api_keys", Answer(body=body, content_encoding="gzip"))

    assert [k.name for k in session.list_api_keys()] == ["k-1"]


def test_an_encoding_keyadmin_did_not_ask_for_is_garbage(hostile, session):
    hostile.answer("/auth/api_keys", Answer(body=b"\x1f\x8b", content_encoding="br"))

    with pytest.raises(appservices.UpstreamGarbage):
        session.list_api_keys()


# --- what cannot be an answer ---


def test_deeply_nested_json_is_garbage(hostile, session):
    hostile.answer("/auth/api_keys", Answer(body=b"[" * 100_000 + b"]" * 100_000))

    with pytest.raises(appservices.UpstreamGarbage):
        session.list_api_keys()


def test_deeply_nested_json_in_an_error_answer_keeps_the_error_its_status_says(hostile, session):
    hostile.answer("/auth/api_keys", Answer(status=500, body=b"[" * 100_000 + b"]" * 100_000))

    with pytest.raises(appservices.UpstreamUnavailable) as caught:
        session.list_api_keys()
    assert caught.value.status == 500


@pytest.mark.parametrize(
    "body",
    [
        b'[{"_id": "65f0a1b2c3d4e5f601234567", "name": "\\ud800", "disabled": false}]',
        b'[{"_id": "65f0a1b2c3d4e5f601234567", "name": "ok", "disabled": false, "\\udfff": 1}]',
    ],
    ids=["value", "member-name"],
)
def test_a_lone_surrogate_is_garbage(hostile, session, body):
    hostile.answer("/auth/api_keys", Answer(body=body))

    with pytest.raises(appservices.UpstreamGarbage):
        session.list_api_keys()


@pytest.mark.parametrize(
    "data",
    [
        {"email": "\\ud800@example.com"},
        {"email": "a@example.com", "name": "\\udc00"},
        {"email": "a@example.com\\u0000<script>"},
        {"email": "a@example.com", "name": "x" * 300},
    ],
    ids=["surrogate-email", "surrogate-name", "control-character", "overlong"],
)
def test_a_profile_whose_strings_no_page_can_show_is_garbage(hostile, session, data):
    body = json.dumps({"user_id": "u" * 24, "type": "normal", "identities": []})
    body = body[:-1] + ', "data": {' + ", ".join(f'"{k}": "{v}"' for k, v in data.items()) + "}}"
    hostile.answer("/auth/profile", Answer(body=body.encode()))

    with pytest.raises(appservices.UpstreamGarbage):
        session.profile()


def test_a_list_of_more_keys_than_a_user_may_have_is_garbage(hostile, session):
    hostile.answer(
        "/auth/api_keys", json_answer([key(n) for n in range(appservices.MAX_KEYS_PER_USER + 1)])
    )

    with pytest.raises(appservices.UpstreamGarbage):
        session.list_api_keys()


def test_a_list_of_exactly_the_most_keys_is_read(hostile, session):
    hostile.answer(
        "/auth/api_keys", json_answer([key(n) for n in range(appservices.MAX_KEYS_PER_USER)])
    )

    assert len(session.list_api_keys()) == appservices.MAX_KEYS_PER_USER


# --- where a location answer may send tokens ---


@pytest.fixture
def elsewhere():
    """A second loopback server on another port: allowed by host, not by origin."""
    server = HostileUpstream().start()
    server.answer("/login", json_answer({}))
    yield server
    server.stop()


def test_a_location_on_another_port_of_an_allowed_host_is_refused(hostile, elsewhere):
    hostile.answer("/location", json_answer({"hostname": elsewhere.url}))

    with pytest.raises(appservices.HostNotAllowed):
        AppServices(base_url=hostile.url).login_email_password("a@x.io", "pw")
    assert elsewhere.requests == []


def test_a_location_with_another_scheme_is_refused(hostile):
    hostile.answer("/location", json_answer({"hostname": hostile.url.replace("http", "https")}))

    with pytest.raises(appservices.HostNotAllowed):
        AppServices(base_url=hostile.url).login_email_password("a@x.io", "pw")
    assert [r for r in hostile.requests if "/login" in r] == []


def test_a_location_named_in_full_by_the_allowlist_is_followed(hostile, elsewhere, settings):
    settings.APPSERVICES_ALLOWED_HOSTS = ["127.0.0.1", elsewhere.url]
    hostile.answer("/location", json_answer({"hostname": elsewhere.url}))

    with pytest.raises(appservices.UpstreamGarbage):  # its login answer is an empty object
        AppServices(base_url=hostile.url).login_email_password("a@x.io", "pw")
    assert [r.split(" ")[0] for r in elsewhere.requests] == ["POST"]


def test_an_allowlisted_origin_allows_only_itself(hostile, elsewhere, settings):
    settings.APPSERVICES_ALLOWED_HOSTS = [elsewhere.url]

    with pytest.raises(appservices.HostNotAllowed):
        AppServices(base_url=hostile.url).login_email_password("a@x.io", "pw")
    assert hostile.requests == []


# --- upstream error text ---


def test_upstream_error_text_goes_to_the_log_never_to_the_message(hostile, session, caplog):
    hostile.answer(
        "/auth/api_keys",
        json_answer({"error": "call +1-555-0100 <b>now</b>", "error_code": "Weird"}, status=400),
    )

    with pytest.raises(appservices.RequestRejected) as caught:
        session.list_api_keys()

    assert "555" not in caught.value.message
    assert caught.value.message == "App Services refused the request."
    assert "call +1-555-0100" in caplog.text
