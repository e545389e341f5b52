"""The audit trail: what an event holds, that it is append-only, pruning, request ids.

The end-to-end check drives real sign-ins and sign-outs (staff and App Services, against the
local App Services server) and then searches the trail and the logs for every secret involved.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction
from django.test import RequestFactory
from django.utils import timezone

from keyadmin import audit
from keyadmin.appservices.connection import get_connection
from keyadmin.models import AppendOnly, AuditEvent
from keyadmin.sso.sources import StaffIdentity
from tests.support import connect

KEY_ID = "65a1b2c3d4e5f60718293a4b"


def event(**fields) -> AuditEvent:
    defaults = {"action": "signin", "outcome": "ok"}
    record = AuditEvent(**{**defaults, **fields})
    record.save()
    return record


# --- what an event holds ---


def test_it_records_who_what_and_where(rf_with_user):
    request = rf_with_user(REMOTE_ADDR="192.0.2.10")
    request.request_id = "abc123"

    recorded = audit.record(
        request, "disable", audit.OK, status=204, key_id=KEY_ID, key_name="ci-deploy"
    )

    stored = AuditEvent.objects.get(pk=recorded.pk)
    assert (stored.action, stored.outcome, stored.status) == ("disable", "ok", 204)
    assert (stored.key_id, stored.key_name) == (KEY_ID, "ci-deploy")
    assert stored.staff_subject == "sam-subject"
    assert stored.staff_issuer == "https://idp.example"
    assert stored.staff_name == "Sam Support"
    assert stored.request_id == "abc123"
    assert stored.client_address == "192.0.2.10"


def test_it_stores_the_row_the_orm_would_store(rf_with_user):
    request = rf_with_user(REMOTE_ADDR="2001:db8::1")
    request.request_id = "req-1"

    recorded = audit.record(
        request,
        "note",
        audit.OK,
        key_id=KEY_ID,
        key_name="ci-deploy",
        batch_id="batch-1",
        changes={"note": ["old", "new ünïcode"]},
        about={
            "appservices_user_id": "u1",
            "app_id": "app-1",
            "acting_for": "c1",
            "ticket": "T-1",
            "acting_until": 1_900_000_000,
        },
    )
    same = AuditEvent(
        **{
            field.attname: getattr(recorded, field.attname)
            for field in AuditEvent._meta.concrete_fields
            if field.name != "id"
        }
    )
    same.save()

    columns = [f.attname for f in AuditEvent._meta.concrete_fields if f.name != "id"]
    ours, orms = (
        AuditEvent.objects.filter(pk=pk).values(*columns).get() for pk in (recorded.pk, same.pk)
    )
    assert ours == orms
    assert ours["changes"] == {"note": ["old", "new ünïcode"]}
    assert ours["client_address"] == "2001:db8::1"
    assert recorded.pk < same.pk


def test_a_recorded_event_cannot_be_saved_again(rf_with_user):
    recorded = audit.record(rf_with_user(), "disable", audit.OK, key_id=KEY_ID)

    recorded.detail = "edited"
    with pytest.raises(AppendOnly):
        recorded.save()
    assert AuditEvent.objects.get().detail == ""


def test_a_broken_audit_table_is_logged_not_raised(rf_with_user, caplog, monkeypatch):
    def broken(event):
        raise DatabaseError("no such table: keyadmin_auditevent")

    monkeypatch.setattr(audit.hotreads, "audit_insert", broken)
    with caplog.at_level(logging.ERROR, logger="keyadmin.audit"):
        assert audit.record(rf_with_user(), "disable", audit.OK, key_id=KEY_ID) is None
    assert "could not store the audit event disable/ok" in caplog.text


def test_it_names_a_refused_identity_that_never_signed_in(rf):
    request = rf.get("/")

    audit.record(request, "signin", audit.DENIED, identity=StaffIdentity("https://idp", "mallory"))

    assert AuditEvent.objects.get().staff_subject == "mallory"


def test_it_keeps_tokens_and_control_characters_out(rf):
    jwt_like = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLWJ5dGVz"
    secret = "x" * 64

    audit.record(
        rf.get("/"),
        "create",
        audit.FAILED,
        key_id="../session",
        key_name="evil\r\nname",
        detail=f"got {jwt_like} and {secret}\x1b[31m",
    )

    stored = AuditEvent.objects.get()
    assert jwt_like not in stored.detail and secret not in stored.detail
    assert stored.detail.count("[redacted]") == 2
    assert "\x1b" not in stored.detail
    assert stored.key_name == "evil  name"
    assert stored.key_id == ""  # not a key id: not recorded


def test_it_refuses_unknown_actions_and_outcomes(rf):
    with pytest.raises(ValueError, match="unknown audit action"):
        audit.record(rf.get("/"), "sudo", audit.OK)
    with pytest.raises(ValueError, match="unknown audit outcome"):
        audit.record(rf.get("/"), "signin", "maybe")


def test_record_error_keeps_the_status_and_class_only(rf):
    from keyadmin.appservices import KeyNotFound

    audit.record_error(rf.get("/"), "delete", KeyNotFound(status=404), key_id=KEY_ID)

    stored = AuditEvent.objects.get()
    assert (stored.outcome, stored.status, stored.detail) == ("failed", 404, "KeyNotFound")


@pytest.mark.parametrize(
    ("proxies", "forwarded", "expected"),
    [
        (0, "203.0.113.9", "10.0.0.2"),  # no trusted proxy: the header is the client's to forge
        (1, "198.51.100.1, 203.0.113.9", "203.0.113.9"),
        (2, "198.51.100.1, 203.0.113.9, 10.0.0.7", "203.0.113.9"),
        (1, "not-an-ip", None),
        (2, "203.0.113.9", "10.0.0.2"),  # fewer entries than proxies: the peer
    ],
)
def test_client_address_trusts_only_the_configured_proxies(
    rf, settings, proxies, forwarded, expected
):
    settings.KEYADMIN_TRUSTED_PROXY_COUNT = proxies
    request = rf.get("/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR=forwarded)

    assert audit.client_address(request) == expected


# --- append-only ---


def test_events_cannot_be_changed_or_deleted_through_the_model():
    stored = event()

    stored.detail = "edited"
    with pytest.raises(AppendOnly):
        stored.save()
    with pytest.raises(AppendOnly):
        stored.delete()
    with pytest.raises(AppendOnly):
        AuditEvent.objects.filter(pk=stored.pk).update(detail="edited")
    with pytest.raises(AppendOnly):
        AuditEvent.objects.all().delete()
    assert AuditEvent.objects.get().detail == ""


def test_the_database_refuses_an_update_too():
    stored = event()

    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE keyadmin_auditevent SET detail = 'x' WHERE id = %s", [stored.pk])
    assert AuditEvent.objects.get().detail == ""


def test_prune_audit_deletes_only_events_past_retention(settings):
    settings.KEYADMIN_AUDIT_RETENTION_DAYS = 30
    event(at=timezone.now() - timedelta(days=31), detail="old")
    event(at=timezone.now() - timedelta(days=29), detail="recent")

    call_command("prune_audit", "--dry-run", stdout=(dry := _Out()))
    assert AuditEvent.objects.count() == 2
    call_command("prune_audit", stdout=(out := _Out()))

    assert "1 audit events are older than 30 days" in dry.text
    assert "deleted 1 audit events" in out.text
    assert list(AuditEvent.objects.values_list("detail", flat=True)) == ["recent"]


def test_prune_audit_takes_a_days_option():
    event(at=timezone.now() - timedelta(days=8))

    call_command("prune_audit", "--days", "7", stdout=_Out())

    assert not AuditEvent.objects.exists()


class _Out:
    def __init__(self) -> None:
        self.text = ""

    def write(self, text: str) -> None:
        self.text += text


# --- request ids ---


def test_every_response_carries_a_fresh_request_id(client):
    first = client.get("/sign-in/")["X-Request-ID"]
    second = client.get("/sign-in/", headers={"X-Request-ID": "forged"})["X-Request-ID"]

    assert len(first) == 32 and len(second) == 32
    assert first != second != "forged"


def test_a_trusted_proxy_may_set_the_request_id(client, settings):
    settings.KEYADMIN_TRUST_REQUEST_ID_HEADER = True

    kept = client.get("/sign-in/", headers={"X-Request-ID": "edge-42.a"})["X-Request-ID"]
    refused = client.get("/sign-in/", headers={"X-Request-ID": "bad id\n"})["X-Request-ID"]

    assert kept == "edge-42.a"
    assert refused != "bad id\n" and len(refused) == 32


# --- end to end: every action we can drive, and no secret anywhere ---


def test_the_trail_holds_every_sign_in_and_out_and_no_secret(
    client, settings, emulator, user_credentials, caplog
):
    settings.DEBUG = True
    settings.KEYADMIN_SSO = "dev"
    caplog.set_level(logging.DEBUG)
    _email, password = user_credentials

    client.post("/sign-in/", {"name": "Sam Support"})
    connect(client, user_credentials)
    refresh_token = _refresh_token(client)
    client.post("/sign-out/")

    # The App Services sign-in/out views add their own events once the lead wires them.
    actions = list(AuditEvent.objects.order_by("id").values_list("action", "outcome"))
    assert actions[0] == ("signin", "ok")
    assert actions[-1] == ("signout", "ok")
    assert {event.staff_name for event in AuditEvent.objects.all()} == {"Sam Support"}
    stored = " ".join(str(value) for row in AuditEvent.objects.values_list() for value in row)
    for secret in (password, refresh_token, settings.KEYADMIN_TOKEN_KEY):
        assert secret not in stored
        assert secret not in caplog.text
    request_ids = set(AuditEvent.objects.values_list("request_id", flat=True))
    assert "" not in request_ids


def _refresh_token(client) -> str:
    request = RequestFactory().get("/")
    request.session = client.session
    return get_connection(request)._refresh_token


@pytest.fixture
def rf_with_user(rf):
    from keyadmin.sso.staff import provision

    user = provision(
        StaffIdentity("https://idp.example", "sam-subject", name="Sam Support", groups=("staff",))
    )

    def make(**extra):
        request = rf.get("/", **extra)
        request.user = user
        request.session = {}
        return request

    return make


@pytest.fixture(autouse=True)
def _allowed_groups(settings):
    settings.KEYADMIN_SSO_ALLOWED_GROUPS = ["staff"]
