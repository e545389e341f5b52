"""Every audit row names its app; rows made while acting name the customer and the ticket."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.contrib.sessions.backends.db import SessionStore
from django.test import RequestFactory

from keyadmin import audit
from keyadmin.audit.forms import AuditFilterForm
from keyadmin.models import AuditEvent

pytestmark = pytest.mark.django_db


def _request(stored: dict | None):
    request = RequestFactory().post("/")
    request.session = SessionStore()
    if stored is not None:
        request.session["appservices"] = stored
    return request


def test_a_row_names_the_app_of_the_session_and_nothing_while_not_acting():
    request = _request({"app_id": "shop-abcde", "user_id": "u1", "refresh": "not read"})

    row = audit.record(request, "create", audit.OK)

    assert (row.app_id, row.appservices_user_id, row.acting_for, row.ticket) == (
        "shop-abcde",
        "u1",
        "",
        "",
    )


def test_a_row_made_while_acting_names_the_customer_and_ticket():
    acting = {"customer_id": "cus_alice", "ticket": "SUP-9", "ends_at": 1, "staff_subject": "s"}
    request = _request({"app_id": "shop-abcde", "user_id": "u1", "acting": acting})

    row = audit.record(request, "delete", audit.OK)

    assert (row.acting_for, row.ticket) == ("cus_alice", "SUP-9")
    assert row.acting_until == datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC)


def test_a_time_box_end_that_is_not_epoch_seconds_is_left_out():
    for ends_at in ("1800000000", True, -5, 2**40, None):
        acting = {"customer_id": "cus_bob", "ticket": "SUP-3", "ends_at": ends_at}
        row = audit.record(
            _request({"app_id": "s", "user_id": "u", "acting": acting}), "create", "ok"
        )
        assert row.acting_until is None


def test_a_row_without_a_connection_leaves_them_empty():
    row = audit.record(_request(None), "signin", audit.OK)

    assert (row.app_id, row.acting_for, row.ticket) == ("", "", "")


def test_the_filter_offers_the_configured_apps_and_filters_by_them():
    audit.record(_request({"app_id": "keep-me", "user_id": "u"}), "create", audit.OK)
    audit.record(_request({"app_id": "other", "user_id": "u"}), "create", audit.OK)
    form = AuditFilterForm({"app": "keep-me"})
    form.fields["app"].choices = [("", "Any"), ("keep-me", "Keep"), ("other", "Other")]

    assert [e.app_id for e in form.filter(AuditEvent.objects.all())] == ["keep-me"]
    assert ("", "Any") in AuditFilterForm().fields["app"].choices
