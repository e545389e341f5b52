"""Lock-down: disable every enabled key of the connected user, per-key results, retry, undo."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from keyadmin.keys import batch
from keyadmin.keys.batch import new_batch_id
from keyadmin.models import AuditEvent, UndoClaim
from tests.keys.test_fault_matrix import FAULTS, SAYS, TIMEOUT, _refuse_connections, _visible
from tests.support import (
    HTMX,
    KEYS_URL,
    SIGNIN_URL,
    connect,
    connected,
    create_key,
    key_url,
    rendered_fields,
    row_post,
    sign_in_staff,
)

CONFIRM_URL = "/keys/lock-down/"
RUN_URL = "/keys/lock-down/run/"


def undo_url(batch_id: str, run: bool = False) -> str:
    return f"/keys/lock-down/{batch_id}/undo/{'run/' if run else ''}"


@pytest.fixture
def three_keys(client, emulator, user_credentials) -> dict[str, str]:
    """A connected operator whose user has keys a, b (enabled) and c (disabled); counts at 0."""
    connected(client, user_credentials)
    ids = {name: create_key(client, name) for name in ("key-a", "key-b", "key-c")}
    client.post(key_url(ids["key-c"], "disable"), row_post(ids["key-c"], "key-c"), headers=HTMX)
    emulator.reset_stats()
    return ids


def states(emulator, user_credentials) -> dict[str, bool]:
    return {key["name"]: key["disabled"] for key in emulator.keys_of(user_credentials[0])}


def confirmed_ids(html: str) -> list[str]:
    form = html.split(f'action="{RUN_URL}"', 1)[1].split("</form>", 1)[0]
    return re.findall(r'name="key" value="([0-9a-f]{24})"', form)


def lock_down(client, ids: list[str], **extra):
    return client.post(RUN_URL, {"key": ids, **extra}, headers=HTMX)


def batch_of(html: str) -> str:
    found = re.search(r'Batch id <code translate="no">([0-9a-f-]{36})</code>', html)
    assert found, html[:3000]
    return found.group(1)


def result_of(html: str, key_id: str) -> str:
    found = re.search(rf'data-result="([a-z-]+)" data-key-id="{key_id}"', html)
    assert found, html[:3000]
    return found.group(1)


def test_the_confirmation_names_the_user_the_app_and_the_enabled_keys(
    client, emulator, user_credentials, three_keys
):
    response = client.get(CONFIRM_URL)

    assert response.status_code == 200
    assert emulator.request_count() == 1
    assert emulator.request_count("keys_list") == 1
    html = response.content.decode()
    assert f"Disable all 2 enabled keys of {user_credentials[0]} in app " in " ".join(html.split())
    assert "1 more key is disabled already and stays so." in html
    assert sorted(confirmed_ids(html)) == sorted([three_keys["key-a"], three_keys["key-b"]])
    assert rendered_fields(html.split(f'action="{RUN_URL}"', 1)[1])["bound_to"]
    assert "Cache-Control" in response and "no-store" in response["Cache-Control"]


def test_it_disables_each_enabled_key_with_one_request_each_after_one_list(
    client, emulator, user_credentials, three_keys
):
    ids = confirmed_ids(client.get(CONFIRM_URL).content.decode())
    emulator.reset_stats()

    response = lock_down(client, ids)

    assert response.status_code == 200
    assert emulator.request_count("keys_list") == 1
    assert emulator.request_count("keys_disable") == 2
    assert emulator.request_count() == 3
    assert states(emulator, user_credentials) == {"key-a": True, "key-b": True, "key-c": True}
    html = response.content.decode()
    assert "<html" not in html
    assert html.lstrip().startswith('<section id="lockdown-answer"')
    text = " ".join(html.split())
    assert f"Lock-down of {user_credentials[0]} in app " in text
    assert ": 2 of 2 keys disabled" in text
    assert result_of(html, three_keys["key-a"]) == "done"
    assert result_of(html, three_keys["key-b"]) == "done"
    assert "Retry the" not in html
    batch_id = batch_of(html)
    assert undo_url(batch_id) in html

    rows = AuditEvent.objects.filter(batch_id=batch_id).order_by("id")
    assert [(r.action, r.outcome, r.key_name) for r in rows] == [
        ("disable", "ok", "key-a"),
        ("disable", "ok", "key-b"),
        ("lock-down", "ok", ""),
    ]
    assert rows[2].detail == "disable 2 keys: 2 done"
    assert {r.appservices_user_id for r in rows} != {""}


def test_the_key_list_is_read_again_and_posted_ids_are_not_trusted(
    client, emulator, user_credentials, three_keys
):
    """A foreign id, a malformed id and an already-disabled key: none is sent upstream."""
    other = ("f" * 24, "../session", three_keys["key-c"], three_keys["key-a"])

    response = lock_down(client, list(other))

    assert emulator.request_count("keys_disable") == 1  # key-a only
    assert emulator.request_count() == 2
    html = response.content.decode()
    assert result_of(html, "f" * 24) == "gone"
    assert result_of(html, three_keys["key-c"]) == "already"
    assert result_of(html, three_keys["key-a"]) == "done"
    assert "../session" not in html
    # key-b was enabled but not on the confirmation: reported, not touched.
    assert "1 enabled key was not on the confirmation" in " ".join(html.split())
    assert states(emulator, user_credentials)["key-b"] is False
    batch_id = batch_of(html)
    keyed = AuditEvent.objects.filter(batch_id=batch_id).exclude(key_id="")
    assert list(keyed.values_list("key_id", flat=True)) == [three_keys["key-a"]]


def test_a_failure_midway_leaves_an_exact_result_and_trail(
    client, emulator, user_credentials, three_keys
):
    a, b = three_keys["key-a"], three_keys["key-b"]
    emulator.add_fault(route="keys_disable", path=a, action="status", status=500, times=1)

    response = lock_down(client, [a, b])

    html = response.content.decode()
    assert result_of(html, a) == "failed"
    assert "App Services had an internal error (HTTP 500)" in html
    assert result_of(html, b) == "done"
    assert emulator.request_count("keys_disable") == 2  # a 500 is an answer: not retried
    batch_id = batch_of(html)
    rows = AuditEvent.objects.filter(batch_id=batch_id).order_by("id")
    assert [(r.action, r.outcome, r.key_id, r.status) for r in rows] == [
        ("disable", "failed", a, 500),
        ("disable", "ok", b, None),
        ("lock-down", "failed", "", None),
    ]
    # The retry form posts the failed key only, under the same batch id.
    retry_form = html.split('name="batch"', 1)[1].split("</form>", 1)[0]
    assert re.findall(r'name="key" value="([0-9a-f]{24})"', retry_form) == [a]
    emulator.reset_stats()

    retried = lock_down(client, [a], batch=_batch_field(html))

    assert emulator.request_count("keys_disable") == 1
    assert result_of(retried.content.decode(), a) == "done"
    assert batch_of(retried.content.decode()) == batch_id
    assert states(emulator, user_credentials) == {"key-a": True, "key-b": True, "key-c": True}


def _batch_field(html: str) -> str:
    return re.search(r'name="batch" value="([^"]+)"', html).group(1)


def test_keys_not_reached_within_the_deadline_are_not_attempted(
    client, emulator, settings, user_credentials, three_keys
):
    settings.KEYADMIN_BATCH_DEADLINE = 0.8
    a, b = three_keys["key-a"], three_keys["key-b"]
    emulator.add_fault(route="keys_disable", path=a, action="delay", delay_ms=1200, times=1)

    response = lock_down(client, [a, b])

    html = response.content.decode()
    assert result_of(html, a) == "failed"  # cut at the batch's deadline, not the call's 15 s
    assert "did not answer in time" in html
    assert result_of(html, b) == "not-attempted"
    assert emulator.request_count("keys_disable") == 1
    assert "Retry the 2 failed ones" in html
    batch_id = batch_of(html)
    summary = AuditEvent.objects.get(batch_id=batch_id, action="lock-down")
    assert summary.outcome == "failed"
    assert "1 failed, 1 not-attempted" in summary.detail


def test_a_rate_limited_answer_stops_the_batch(client, emulator, user_credentials, three_keys):
    a, b = three_keys["key-a"], three_keys["key-b"]
    emulator.add_fault(
        route="keys_disable", action="status", status=429, headers={"Retry-After": "1"}, times=1
    )

    html = lock_down(client, [a, b]).content.decode()

    assert result_of(html, a) == "failed"
    assert result_of(html, b) == "not-attempted"
    assert emulator.request_count("keys_disable") == 1
    assert "Stopped after a key failed" in html


def test_a_dead_session_midway_stops_and_still_shows_the_results(
    client, emulator, user_credentials, three_keys
):
    a, b = three_keys["key-a"], three_keys["key-b"]
    body = {"error": "invalid session", "error_code": "InvalidSession"}
    emulator.add_fault(route="keys_disable", path=b, action="status", status=401, body=body)

    response = lock_down(client, [a, b])

    html = response.content.decode()
    assert response.status_code == 200
    assert result_of(html, a) == "done"
    assert result_of(html, b) == "failed"
    assert "Sign in to App Services again" in html
    assert "appservices" not in client.session


def test_a_failed_list_changes_nothing(client, emulator, user_credentials, three_keys):
    emulator.add_fault(route="keys_list", action="status", status=503, times=1)

    response = lock_down(client, [three_keys["key-a"]])

    html = response.content.decode()
    assert "The keys could not be listed, so nothing was changed" in html
    assert emulator.request_count("keys_disable") == 0
    summary = AuditEvent.objects.get(action="lock-down")
    assert summary.outcome == "failed" and summary.status == 503


def test_without_javascript_it_is_a_page(client, emulator, user_credentials, three_keys):
    response = client.post(RUN_URL, {"key": [three_keys["key-a"], three_keys["key-b"]]})

    assert response.status_code == 200
    html = response.content.decode()
    assert "<html" in html
    assert ": 2 of 2 keys disabled" in " ".join(html.split())


def test_a_stale_page_is_refused_without_a_request(client, emulator, user_credentials, three_keys):
    response = client.post(RUN_URL, {"key": [three_keys["key-a"]], "bound_to": "x"}, headers=HTMX)

    assert emulator.request_count() == 0
    assert "does not say which App Services user it was for" in response.content.decode()
    assert AuditEvent.objects.get(action="lock-down").outcome == "denied"


def test_a_viewer_cannot_lock_down(client, emulator, user_credentials, three_keys):
    client.logout()
    sign_in_staff(client, "viewer", name="Val Viewer")
    connect(client, user_credentials)
    emulator.reset_stats()

    assert client.get(CONFIRM_URL).status_code == 403
    assert lock_down(client, [three_keys["key-a"]]).status_code == 403
    assert emulator.request_count() == 0


# --- undo ---


def test_undo_re_enables_exactly_the_keys_the_lock_down_disabled(
    client, emulator, user_credentials, three_keys
):
    a, b, c = three_keys["key-a"], three_keys["key-b"], three_keys["key-c"]
    lockdown_id = batch_of(lock_down(client, [a, b]).content.decode())
    # Afterwards by hand: b enabled and disabled again (a decision since the lock-down).
    client.post(key_url(b, "enable"), row_post(b, "key-b", disabled=True), headers=HTMX)
    client.post(key_url(b, "disable"), row_post(b, "key-b"), headers=HTMX)
    emulator.reset_stats()

    page = client.get(undo_url(lockdown_id))
    assert page.status_code == 200
    assert emulator.request_count() == 0  # from the trail alone
    assert "Left as they are" in page.content.decode()

    response = client.post(undo_url(lockdown_id, run=True), {}, headers=HTMX)

    assert emulator.request_count("keys_list") == 1
    assert emulator.request_count("keys_enable") == 1
    assert emulator.request_count() == 2
    # c was disabled before the lock-down, b by hand after it: both stay disabled.
    assert states(emulator, user_credentials) == {"key-a": False, "key-b": True, "key-c": True}
    html = response.content.decode()
    assert result_of(html, a) == "done"
    assert result_of(html, b) == "left"
    assert c not in html
    undo_id = batch_of(html)
    assert undo_id != lockdown_id
    rows = AuditEvent.objects.filter(batch_id=undo_id).order_by("id")
    assert [(r.action, r.outcome, r.key_id) for r in rows] == [
        ("enable", "ok", a),
        ("lock-down-undo", "ok", ""),
    ]
    assert rows[1].detail.startswith(
        f"undoes lock-down {lockdown_id}; enable 2 keys: 1 done, 1 left"
    )


def test_undo_leaves_a_key_enabled_since_and_a_second_undo_does_nothing(
    client, emulator, user_credentials, three_keys
):
    a, b = three_keys["key-a"], three_keys["key-b"]
    lockdown_id = batch_of(lock_down(client, [a, b]).content.decode())
    client.post(undo_url(lockdown_id, run=True), {}, headers=HTMX)
    emulator.reset_stats()

    page = client.get(undo_url(lockdown_id)).content.decode()

    assert "Nothing to undo" in page
    assert re.search(r"This lock-down was undone by Sam Support at [0-9-]+ \d\d:\d\d \(UTC\)", page)
    assert undo_url(lockdown_id, run=True) not in page
    again = client.post(undo_url(lockdown_id, run=True), {}, headers=HTMX).content.decode()
    assert emulator.request_count() == 0  # the replayed form: not even the list
    assert a not in again
    assert again.lstrip().startswith('<section id="undo-answer"')
    text = " ".join(again.split())
    assert "This lock-down was undone by Sam Support at " in text
    assert "There is nothing left to undo, so nothing was sent to App Services." in text
    refused = AuditEvent.objects.filter(action="lock-down-undo", outcome="denied").get()
    assert refused.detail == f"lock-down {lockdown_id}: nothing left to undo"
    assert AuditEvent.objects.filter(action="lock-down-undo", outcome="ok").count() == 1
    assert not UndoClaim.objects.exists()


def test_the_keys_page_offers_the_undo_while_the_lock_down_is_the_latest(
    client, emulator, user_credentials, three_keys
):
    lockdown_id = batch_of(lock_down(client, [three_keys["key-a"]]).content.decode())

    page = client.get(KEYS_URL).content.decode()
    assert undo_url(lockdown_id) in page
    assert "These keys were locked down by Sam Support" in page

    client.post(undo_url(lockdown_id, run=True), {}, headers=HTMX)

    assert undo_url(lockdown_id) not in client.get(KEYS_URL).content.decode()


def test_the_same_user_id_in_another_app_does_not_hide_the_undo(
    client, emulator, user_credentials, three_keys
):
    lockdown_id = batch_of(lock_down(client, [three_keys["key-a"]]).content.decode())
    row = AuditEvent.objects.get(action="lock-down")
    AuditEvent(
        action="lock-down-undo",
        outcome="ok",
        app_id="another-app",
        appservices_user_id=row.appservices_user_id,
    ).save()

    assert undo_url(lockdown_id) in client.get(KEYS_URL).content.decode()


NOT_YOURS = "This lock-down is not of the App Services user you are connected to"


def assert_says_nothing_about(html: str, *secrets: str) -> None:
    assert NOT_YOURS in html
    for text in secrets:
        assert text not in html
    # No counts, no author, no plan: only that it is not this user's.
    for said in ("Locked down by", "re-enables", "Nothing to undo", "Left as they are", "undone"):
        assert said not in html
    assert "/undo/run/" not in html


def test_undo_of_another_users_lock_down_touches_nothing_and_says_nothing_of_them(
    client, emulator, user_credentials, three_keys
):
    # Review: the page named the other user's App Services user id (and app) to whoever held the
    # batch id; an operator connected elsewhere is not that user's operator.
    lockdown_id = batch_of(lock_down(client, [three_keys["key-a"]]).content.decode())
    their_user_id = AuditEvent.objects.get(action="lock-down").appservices_user_id
    other = (user_credentials[0].replace("user-", "other-"), "pw-" + user_credentials[1])
    emulator.create_user(*other)
    connect(client, other)
    create_key(client, "theirs")
    client.get(KEYS_URL)  # the flash messages of the sign-ins ("Connected as …") are shown
    emulator.reset_stats()

    page = client.get(undo_url(lockdown_id))
    response = client.post(undo_url(lockdown_id, run=True), {})
    fragment = client.post(undo_url(lockdown_id, run=True), {}, headers=HTMX)

    assert page.status_code == 404
    assert_says_nothing_about(
        page.content.decode(),
        their_user_id,
        user_credentials[0],
        "key-a",
        three_keys["key-a"],
    )
    assert response.status_code == 404
    for answer in (response, fragment):
        assert_says_nothing_about(answer.content.decode(), their_user_id, "key-a")
    assert emulator.request_count() == 0
    assert not AuditEvent.objects.filter(action="lock-down-undo").exists()
    assert not UndoClaim.objects.exists()
    assert states(emulator, user_credentials)["key-a"] is True


def test_a_lock_down_of_the_same_user_id_in_another_app_is_not_shown_nor_undone(
    client, emulator, user_credentials, three_keys
):
    connected_as = AuditEvent.objects.filter(action="create").first().appservices_user_id
    lockdown_id = "12345678-1234-4234-8234-123456789abc"
    about = {"app_id": "another-app", "appservices_user_id": connected_as, "batch_id": lockdown_id}
    AuditEvent(
        action="disable", outcome="ok", key_id="a" * 24, key_name="their-key", **about
    ).save()
    AuditEvent(action="lock-down", outcome="ok", staff_name="Olga Other", **about).save()
    emulator.reset_stats()

    page = client.get(undo_url(lockdown_id))
    response = client.post(undo_url(lockdown_id, run=True), {}, headers=HTMX)

    assert page.status_code == 404
    assert_says_nothing_about(page.content.decode(), "another-app", "their-key", "a" * 24)
    assert "Olga Other" not in page.content.decode()
    assert_says_nothing_about(response.content.decode(), "another-app", "their-key")
    assert emulator.request_count() == 0
    assert not AuditEvent.objects.filter(action="lock-down-undo").exists()


def test_an_unknown_lock_down_is_404(client, emulator, user_credentials, three_keys):
    response = client.get(undo_url("12345678-1234-4234-8234-123456789abc"))

    assert response.status_code == 404
    assert "No lock-down has this id." in response.content.decode()
    assert client.get("/keys/lock-down/not-a-uuid/undo/").status_code == 404


def test_an_undo_failing_midway_is_retried_by_posting_it_again(
    client, emulator, user_credentials, three_keys
):
    a, b = three_keys["key-a"], three_keys["key-b"]
    lockdown_id = batch_of(lock_down(client, [a, b]).content.decode())
    emulator.reset_stats()
    emulator.add_fault(route="keys_enable", path=a, action="status", status=500, times=1)

    first = client.post(undo_url(lockdown_id, run=True), {}, headers=HTMX).content.decode()

    assert [result_of(first, a), result_of(first, b)] == ["failed", "done"]
    assert f'action="{undo_url(lockdown_id, run=True)}"' in first  # the retry posts the undo again
    first_id = batch_of(first)
    assert AuditEvent.objects.get(batch_id=first_id, action="lock-down-undo").outcome == "failed"
    emulator.reset_stats()

    again = client.post(undo_url(lockdown_id, run=True), {}, headers=HTMX).content.decode()

    assert emulator.request_count("keys_enable") == 1  # a only: the first undo did b
    assert result_of(again, a) == "done"
    assert b not in again
    assert states(emulator, user_credentials) == {"key-a": False, "key-b": False, "key-c": True}


# --- one undo at a time ---


def test_an_undo_claim_is_held_by_one_request_until_it_is_released(rf):
    lockdown_id, other_lockdown = new_batch_id(), new_batch_id()

    first = batch.claim_undo(rf.post("/"), lockdown_id)
    second = batch.claim_undo(rf.post("/"), lockdown_id)

    assert first.ours and not second.ours
    assert second.claim.undo_batch_id == first.claim.undo_batch_id  # the holder, to name it
    assert batch.undo_under_way(lockdown_id).undo_batch_id == first.claim.undo_batch_id
    assert batch.claim_undo(rf.post("/"), other_lockdown).ours  # another lock-down is free
    assert not batch.claim_undo(rf.post("/"), lockdown_id).ours  # still held
    batch.release_undo(first.claim)
    assert batch.undo_under_way(lockdown_id) is None
    third = batch.claim_undo(rf.post("/"), lockdown_id)
    assert third.ours and third.claim.undo_batch_id != first.claim.undo_batch_id


def test_an_undo_claim_of_a_crashed_process_expires_and_is_taken_over_once(rf, settings):
    settings.KEYADMIN_BATCH_DEADLINE = 20
    lockdown_id = new_batch_id()
    crashed = batch.claim_undo(rf.post("/"), lockdown_id).claim
    left_for = crashed.expires_at - crashed.claimed_at
    assert left_for == timedelta(seconds=20 + batch.UNDO_CLAIM_MARGIN)
    # The process died: no release. Until the claim expires it holds; then it does not.
    UndoClaim.objects.filter(pk=lockdown_id).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert batch.undo_under_way(lockdown_id) is None

    taken = batch.claim_undo(rf.post("/"), lockdown_id)
    again = batch.claim_undo(rf.post("/"), lockdown_id)

    assert taken.ours and taken.claim.undo_batch_id != crashed.undo_batch_id
    assert not again.ours and again.claim.undo_batch_id == taken.claim.undo_batch_id
    batch.release_undo(crashed)  # a late release of the dead undo frees nothing
    assert batch.undo_under_way(lockdown_id).undo_batch_id == taken.claim.undo_batch_id


def hold_claim(lockdown_id: str, staff_name: str = "Olga Operator") -> UndoClaim:
    """An undo of `lockdown_id` under way in another request: its claim, as it wrote it."""
    now = timezone.now()
    return UndoClaim.objects.create(
        lockdown_batch_id=lockdown_id,
        undo_batch_id=new_batch_id(),
        staff_name=staff_name,
        claimed_at=now,
        expires_at=now + timedelta(seconds=60),
    )


def test_an_undo_while_another_is_under_way_sends_nothing_and_says_by_whom(
    client, emulator, user_credentials, three_keys
):
    a, b = three_keys["key-a"], three_keys["key-b"]
    lockdown_id = batch_of(lock_down(client, [a, b]).content.decode())
    form = rendered_fields(client.get(undo_url(lockdown_id)).content.decode())
    holder = hold_claim(lockdown_id)
    emulator.reset_stats()

    fragment = client.post(undo_url(lockdown_id, run=True), form, headers=HTMX)
    plain = client.post(undo_url(lockdown_id, run=True), form)
    page = client.get(undo_url(lockdown_id)).content.decode()

    assert emulator.request_count() == 0
    assert states(emulator, user_credentials) == {"key-a": True, "key-b": True, "key-c": True}
    at = timezone.localtime(holder.claimed_at).strftime("%Y-%m-%d %H:%M")
    busy = f"This lock-down is already being undone by Olga Operator, since {at} (UTC)."
    assert fragment.status_code == plain.status_code == 200
    html = fragment.content.decode()
    assert html.lstrip().startswith('<section id="undo-answer"')
    assert busy in " ".join(html.split())
    assert 'role="alert"' in html
    assert busy in " ".join(plain.content.decode().split())
    assert "<html" in plain.content.decode()
    for answer in (html, plain.content.decode(), page):
        assert undo_url(lockdown_id, run=True) not in answer  # no form to send it a third time
    assert "This lock-down is being undone by Olga Operator" in " ".join(page.split())
    refused = AuditEvent.objects.filter(action="lock-down-undo").order_by("id")
    assert [(r.outcome, r.detail) for r in refused] == [
        ("denied", f"lock-down {lockdown_id}: already being undone by undo {holder.undo_batch_id}")
    ] * 2
    # The refused requests did not free the claim of the undo under way.
    assert UndoClaim.objects.get(pk=lockdown_id).undo_batch_id == holder.undo_batch_id
    # A refusal changed nothing: the keys page still offers the undo.
    assert undo_url(lockdown_id) in client.get(KEYS_URL).content.decode()

    UndoClaim.objects.filter(pk=lockdown_id).delete()  # that undo ended without a row (it died)
    emulator.reset_stats()
    done = client.post(undo_url(lockdown_id, run=True), form, headers=HTMX).content.decode()

    assert emulator.request_count("keys_enable") == 2
    assert [result_of(done, a), result_of(done, b)] == ["done", "done"]
    assert not UndoClaim.objects.exists()


def test_an_undo_that_raises_releases_its_claim(
    client, emulator, user_credentials, three_keys, monkeypatch
):
    lockdown_id = batch_of(lock_down(client, [three_keys["key-a"]]).content.decode())

    def broken(*args, **kwargs):
        assert UndoClaim.objects.filter(pk=lockdown_id).exists()  # held while it works
        raise RuntimeError("a bug midway")

    monkeypatch.setattr(batch, "perform", broken)
    with pytest.raises(RuntimeError):
        client.post(undo_url(lockdown_id, run=True), {}, headers=HTMX)

    assert not UndoClaim.objects.exists()
    assert batch.undo_under_way(lockdown_id) is None


def test_a_key_the_lock_downs_retry_disabled_after_the_undo_is_undone_by_a_later_undo(
    client, emulator, user_credentials, three_keys
):
    a, b = three_keys["key-a"], three_keys["key-b"]
    emulator.add_fault(route="keys_disable", path=b, action="status", status=500, times=1)
    first = lock_down(client, [a, b]).content.decode()
    lockdown_id = batch_of(first)
    client.post(undo_url(lockdown_id, run=True), {}, headers=HTMX)  # a enabled again
    lock_down(client, [b], batch=_batch_field(first))  # the lock-down's retry: b disabled now
    emulator.reset_stats()

    page = client.get(undo_url(lockdown_id)).content.decode()
    later = client.post(undo_url(lockdown_id, run=True), {}, headers=HTMX).content.decode()

    assert "It re-enables the key this lock-down disabled" in " ".join(page.split())
    assert emulator.request_count("keys_enable") == 1
    assert result_of(later, b) == "done"
    assert a not in later  # done by the first undo
    assert states(emulator, user_credentials) == {"key-a": False, "key-b": False, "key-c": True}


def test_a_stale_undo_form_does_not_hide_the_undo_on_the_keys_page(
    client, emulator, user_credentials, three_keys
):
    lockdown_id = batch_of(lock_down(client, [three_keys["key-a"]]).content.decode())

    client.post(undo_url(lockdown_id, run=True), {"bound_to": "x"}, headers=HTMX)

    assert AuditEvent.objects.get(action="lock-down-undo").outcome == "denied"
    assert undo_url(lockdown_id) in client.get(KEYS_URL).content.decode()


def offered(client) -> str | None:
    """The batch id of the lock-down the keys page offers to undo, if any."""
    found = re.findall(
        r'href="/keys/lock-down/([0-9a-f-]{36})/undo/"', client.get(KEYS_URL).content.decode()
    )
    assert len(found) <= 1, found
    return found[0] if found else None


@pytest.mark.parametrize("route", ["keys_list", "keys_enable"])
def test_an_undo_that_re_enabled_nothing_does_not_hide_the_undo_on_the_keys_page(
    client, emulator, user_credentials, three_keys, route
):
    # Review: the banner showed only while the user's latest lock-down or undo row was a
    # lock-down, so an undo whose list failed, or whose every enable failed, hid the offer of a
    # lock-down whose keys were all still disabled.
    a, b = three_keys["key-a"], three_keys["key-b"]
    lockdown_id = batch_of(lock_down(client, [a, b]).content.decode())
    # The list once, or each of the two enables.
    emulator.add_fault(
        route=route, action="status", status=503, times=1 if route == "keys_list" else 2
    )

    client.post(undo_url(lockdown_id, run=True), {}, headers=HTMX)

    assert AuditEvent.objects.get(action="lock-down-undo").outcome == "failed"
    assert states(emulator, user_credentials) == {"key-a": True, "key-b": True, "key-c": True}
    assert offered(client) == lockdown_id
    emulator.clear_faults()
    client.post(undo_url(lockdown_id, run=True), {}, headers=HTMX)
    assert states(emulator, user_credentials) == {"key-a": False, "key-b": False, "key-c": True}
    assert offered(client) is None


@pytest.mark.parametrize("second", ["no key", "a key disabled already"])
def test_a_later_lock_down_that_disabled_nothing_does_not_hide_the_undo(
    client, emulator, user_credentials, three_keys, second
):
    # Review: a lock-down of no key (an empty selection) or of keys already disabled wrote the
    # user's latest lock-down row and hid the offer of the earlier one, whose key was still off.
    a, c = three_keys["key-a"], three_keys["key-c"]
    lockdown_id = batch_of(lock_down(client, [a]).content.decode())

    later = batch_of(lock_down(client, [] if second == "no key" else [c]).content.decode())

    assert later != lockdown_id
    assert AuditEvent.objects.filter(action="lock-down", batch_id=later).get().outcome == "ok"
    assert offered(client) == lockdown_id
    assert (
        f'action="{undo_url(lockdown_id, run=True)}"'
        in client.get(undo_url(lockdown_id)).content.decode()
    )


def test_a_completed_undo_ends_the_offer_even_of_a_key_it_found_enabled_already(
    client, emulator, user_credentials, three_keys
):
    # The first undo's enable reaches App Services and its answer is lost: keyadmin records a
    # failure, the key is on. The next undo finds it enabled (no row of its own) and ends
    # complete: nothing is left to re-enable, so the keys page no longer offers it.
    a = three_keys["key-a"]
    lockdown_id = batch_of(lock_down(client, [a]).content.decode())
    emulator.add_fault(route="keys_enable", action="drop", when="after")
    client.raise_request_exception = False
    client.post(undo_url(lockdown_id, run=True), {}, headers=HTMX)
    emulator.clear_faults()
    assert states(emulator, user_credentials)["key-a"] is False
    assert offered(client) == lockdown_id  # the trail says a is still disabled by it

    done = client.post(undo_url(lockdown_id, run=True), {}, headers=HTMX).content.decode()

    assert result_of(done, a) == "already"
    assert AuditEvent.objects.filter(action="lock-down-undo").latest("id").outcome == "ok"
    assert offered(client) is None


def test_the_offer_is_of_the_latest_lock_down_with_a_key_left_to_re_enable(
    client, emulator, user_credentials, three_keys
):
    a, b = three_keys["key-a"], three_keys["key-b"]
    first = batch_of(lock_down(client, [a]).content.decode())
    second = batch_of(lock_down(client, [b]).content.decode())
    assert offered(client) == second

    client.post(undo_url(second, run=True), {}, headers=HTMX)

    assert offered(client) == first
    client.post(key_url(a, "enable"), row_post(a, "key-a", disabled=True), headers=HTMX)
    assert offered(client) is None  # enabled by hand: nothing of the first is left either


def test_a_bulk_disable_is_not_offered_as_a_lock_down_to_undo(client, emulator, three_keys):
    a = three_keys["key-a"]
    client.post("/keys/bulk/", {"action": "disable", "confirm": "1", "key": [a]}, headers=HTMX)

    assert AuditEvent.objects.filter(action="disable", key_id=a).get().batch_id
    assert offered(client) is None


def test_the_keys_page_asks_the_trail_once_or_twice_whatever_its_length(
    client, emulator, user_credentials, three_keys, django_assert_num_queries
):
    # On every list. One statement when no disable of a batch stands (most lists), one more
    # to tell a lock-down from a bulk action and find its completed undos; no upstream request.
    connection = client.get(KEYS_URL).wsgi_request.connection
    listed = list(three_keys.values())
    with django_assert_num_queries(1):
        assert batch.latest_lockdown(connection, listed) is None
    ids = [three_keys["key-a"], three_keys["key-b"]]
    lockdown_id = batch_of(lock_down(client, ids).content.decode())
    for _ in range(3):
        client.post(undo_url(lockdown_id, run=True), {"bound_to": "x"}, headers=HTMX)
    emulator.reset_stats()
    with django_assert_num_queries(2):
        assert batch.latest_lockdown(connection, listed).batch_id == lockdown_id
    assert emulator.request_count() == 0
    # Only the listed keys are read: with none of the locked-down keys listed, nothing stands.
    with django_assert_num_queries(1):
        assert batch.latest_lockdown(connection, [three_keys["key-c"]]) is None
    with django_assert_num_queries(0):
        assert batch.latest_lockdown(connection, []) is None


def test_a_retry_token_from_another_users_lock_down_files_nothing_under_its_id(
    client, emulator, user_credentials, three_keys
):
    # Review 13: the retry form's signed batch id was not bound to the user and app it was
    # issued for. Posted from another user's page, it filed that user's lock-down under the
    # first one's incident id, and the first lock-down's undo then answered 404 ("another
    # user's"); a bulk action's token made its disables undoable as a lock-down.
    a, b = three_keys["key-a"], three_keys["key-b"]
    emulator.add_fault(route="keys_disable", path=b, action="status", status=500, times=1)
    first = lock_down(client, [a, b]).content.decode()
    lockdown_id = batch_of(first)
    token = re.search(r'name="batch" value="([^"]+)"', first)
    assert token, first[:3000]
    other = ("other-" + user_credentials[0], "pw-" + user_credentials[1])
    emulator.create_user(*other)
    connect(client, other)
    theirs = create_key(client, "theirs")

    html = lock_down(client, [theirs], batch=token.group(1)).content.decode()

    assert batch_of(html) != lockdown_id
    assert not AuditEvent.objects.filter(batch_id=lockdown_id, key_id=theirs).exists()
    connect(client, user_credentials)
    assert client.get(undo_url(lockdown_id)).status_code == 200


# --- an undo that stopped midway ---


@pytest.mark.parametrize("how", ["raised", "killed"])
def test_an_undo_that_died_midway_is_finished_by_the_next_without_calling_its_keys_hand_made(
    client, emulator, user_credentials, three_keys, monkeypatch, how
):
    # Review: a worker that died after re-enabling a and before b and its summary row left a's
    # enable row under a batch id nothing named; the next undo's page and summary then said a
    # was "changed by hand since the lock-down".
    a, b = three_keys["key-a"], three_keys["key-b"]
    lockdown_id = batch_of(lock_down(client, [a, b]).content.decode())
    real_one, calls = batch._one, []

    def dies_at_the_second_key(request, session, bt, key, key_id, deadline_at):
        calls.append(key_id)
        if len(calls) == 2:
            raise SystemExit("worker killed")  # not an AppServicesError: nothing answers it
        return real_one(request, session, bt, key, key_id, deadline_at)

    monkeypatch.setattr(batch, "_one", dies_at_the_second_key)
    if how == "killed":  # SIGKILL runs no `finally`: the claim stays until it expires
        monkeypatch.setattr(batch, "release_undo", lambda claim: None)
    with pytest.raises(SystemExit):
        client.post(undo_url(lockdown_id, run=True), {}, headers=HTMX)
    monkeypatch.undo()
    assert states(emulator, user_credentials) == {"key-a": False, "key-b": True, "key-c": True}
    assert not AuditEvent.objects.filter(action="lock-down-undo").exists()  # no summary row
    if how == "killed":
        assert UndoClaim.objects.filter(pk=lockdown_id).update(
            expires_at=timezone.now() - timedelta(seconds=1)
        )
    emulator.reset_stats()

    page = client.get(undo_url(lockdown_id)).content.decode()
    done = client.post(undo_url(lockdown_id, run=True), {}, headers=HTMX).content.decode()
    after = client.get(undo_url(lockdown_id)).content.decode()

    plan = " ".join(page.split())
    assert "It re-enables the key this lock-down disabled, if it is still disabled:" in plan
    assert "key-b" in plan and "key-a" not in plan
    for html in (page, done, after):
        assert "changed by hand" not in html
        assert "Left as they are" not in html
    assert emulator.request_count("keys_enable") == 1  # b: a was done by the undo that died
    assert result_of(done, b) == "done"
    assert a not in done
    assert "Nothing to undo" in after
    assert states(emulator, user_credentials) == {"key-a": False, "key-b": False, "key-c": True}
    # The trail: a's row from the undo that died names the lock-down; the summary of the one
    # that finished counts what it did, and calls nothing "left".
    [dead_row] = AuditEvent.objects.filter(action="enable", key_id=a)
    assert (dead_row.outcome, dead_row.detail) == ("ok", f"undoes lock-down {lockdown_id}")
    [summary] = AuditEvent.objects.filter(action="lock-down-undo")
    assert summary.detail == f"undoes lock-down {lockdown_id}; enable 1 keys: 1 done"
    assert summary.batch_id == batch_of(done) != dead_row.batch_id
    assert not UndoClaim.objects.exists()


def test_a_failed_row_of_an_undo_names_its_lock_down_and_its_error(
    client, emulator, user_credentials, three_keys
):
    a, b = three_keys["key-a"], three_keys["key-b"]
    lockdown_id = batch_of(lock_down(client, [a, b]).content.decode())
    emulator.add_fault(route="keys_enable", path=b, action="status", status=500, times=1)

    client.post(undo_url(lockdown_id, run=True), {}, headers=HTMX)

    rows = AuditEvent.objects.filter(action="enable").order_by("id")
    assert [(r.key_id, r.outcome, r.detail) for r in rows] == [
        (a, "ok", f"undoes lock-down {lockdown_id}"),
        (b, "failed", f"undoes lock-down {lockdown_id}; UpstreamUnavailable"),
    ]
    # A bulk or a row enable names nothing: it is not an undo of this lock-down.
    client.post(key_url(b, "enable"), row_post(b, "key-b", disabled=True), headers=HTMX)
    assert AuditEvent.objects.filter(action="enable").order_by("id").last().detail == ""


# --- an undo that meets an App Services error, or a session that cannot manage keys ---


def test_a_session_that_cannot_manage_keys_is_not_offered_the_undo_and_is_refused_in_place(
    client, emulator, user_credentials, three_keys
):
    # Review: connected to the lock-down's user through an API key, the operator was shown the
    # undo form, and pressing it answered a bare 500 (the undo's failure handler did not take
    # the URL's batch id).
    a = three_keys["key-a"]
    lockdown_id = batch_of(lock_down(client, [a]).content.decode())
    made = client.post("/keys/new/", {"name": "for-login"}).content.decode()
    secret = made.split('class="secret-value" translate="no">')[1].split("<")[0]
    assert client.post(SIGNIN_URL, {"provider": "api-key", "key": secret}).status_code == 302
    client.get(KEYS_URL)  # its "Connected as" notice is shown
    emulator.reset_stats()

    page = client.get(undo_url(lockdown_id))
    fragment = client.post(undo_url(lockdown_id, run=True), {}, headers=HTMX)
    plain = client.post(undo_url(lockdown_id, run=True), {})

    assert page.status_code == 200
    shown = _visible(page.content.decode())
    assert "It re-enables the key this lock-down disabled" in shown  # the plan, from the trail
    assert "This session cannot manage API keys" in shown
    assert "This App Services session was opened with an API key." in shown
    assert undo_url(lockdown_id, run=True) not in page.content.decode()  # no form to press
    assert fragment.status_code == 200 and plain.status_code == 403
    assert fragment.content.decode().lstrip().startswith('<section id="undo-answer"')
    assert "<html" in plain.content.decode()
    for answer in (fragment, plain):
        html = answer.content.decode()
        text = _visible(html)
        assert "The lock-down was not undone: no key was changed." in text
        assert SAYS["403"] in text
        assert 'role="alert"' in html
        assert "<title>Something went wrong" not in html
        assert undo_url(lockdown_id, run=True) not in html
    assert emulator.request_count() == 0
    assert states(emulator, user_credentials)["key-a"] is True
    assert not UndoClaim.objects.exists()
    refused = AuditEvent.objects.filter(action="lock-down-undo").order_by("id")
    assert [(r.outcome, r.detail) for r in refused] == [
        ("denied", f"lock-down {lockdown_id}: NotAllowed")
    ] * 2
    # Refusals: connected with the password again, the keys page still offers the undo.
    connect(client, user_credentials)
    assert undo_url(lockdown_id) in client.get(KEYS_URL).content.decode()


def test_an_error_that_reaches_the_undo_view_is_shown_on_its_page_with_the_form_again(
    client, emulator, user_credentials, three_keys, monkeypatch
):
    """Whatever App Services error gets past the batch (none does today: it answers its own
    requests' errors), the undo page says it in place, frees the claim and offers the undo."""
    from keyadmin import appservices

    lockdown_id = batch_of(lock_down(client, [three_keys["key-a"]]).content.decode())

    def unavailable(*args, **kwargs):
        raise appservices.UpstreamUnavailable(status=503)

    monkeypatch.setattr(batch, "perform", unavailable)
    fragment = client.post(undo_url(lockdown_id, run=True), {}, headers=HTMX)
    plain = client.post(undo_url(lockdown_id, run=True), {})

    assert fragment.status_code == plain.status_code == 200
    for answer in (fragment, plain):
        html = answer.content.decode()
        assert "The lock-down was not undone: no key was changed." in _visible(html)
        assert f'action="{undo_url(lockdown_id, run=True)}"' in html  # try again
    assert not UndoClaim.objects.exists()
    rows = AuditEvent.objects.filter(action="lock-down-undo")
    assert {(r.outcome, r.status, r.detail) for r in rows} == {
        ("failed", 503, f"lock-down {lockdown_id}: UpstreamUnavailable")
    }
    assert states(emulator, user_credentials)["key-a"] is True


UNDO_FAULTS = [("keys_list", fault) for fault in FAULTS] + [
    ("keys_enable", fault) for fault in FAULTS if fault != "refused"
]


@pytest.mark.parametrize("htmx", [True, False], ids=["htmx", "plain"])
@pytest.mark.parametrize(("route", "fault"), UNDO_FAULTS)
def test_every_app_services_fault_during_an_undo_is_answered_in_place(
    client, emulator, settings, user_credentials, three_keys, route, fault, htmx
):
    a = three_keys["key-a"]
    lockdown_id = batch_of(lock_down(client, [a]).content.decode())
    if fault == "refused":
        _refuse_connections(client, settings)
    else:
        emulator.add_fault(route=route, **FAULTS[fault])
    if fault == "timeout":
        settings.APPSERVICES_TIMEOUT = TIMEOUT

    response = client.post(undo_url(lockdown_id, run=True), {}, headers=HTMX if htmx else {})
    emulator.clear_faults()

    html = response.content.decode()
    assert response.status_code == 200, html[:1500]
    assert ("<html" in html) is not htmx
    assert SAYS[fault] in _visible(html), _visible(html)[:1500]
    assert "<title>Something went wrong" not in html
    assert "forbidden by policy" not in html  # upstream text goes to the log only
    if route == "keys_list":
        assert "The keys could not be listed, so nothing was changed" in _visible(html)
        assert states(emulator, user_credentials)["key-a"] is True
    else:
        assert result_of(html, a) == "failed"
    assert not UndoClaim.objects.exists()
    summary = AuditEvent.objects.get(action="lock-down-undo")
    assert summary.outcome == "failed"
    assert summary.detail.startswith(f"undoes lock-down {lockdown_id}; ")
