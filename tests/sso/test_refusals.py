# ruff: noqa: F811 - pytest fixtures are imported, then named as test arguments
"""What the identity middleware answers when it refuses a request: the same protective headers
as every page, and an audit trail that a flood of refusals cannot bury."""

from __future__ import annotations

import pytest

from keyadmin import audit
from keyadmin.models import AuditEvent
from tests.sso.fixtures import (
    jwks_server,  # noqa: F401 - fixture
    keys,  # noqa: F401 - fixture
    mint,
    use_assertion_mode,
)

URL = "/_test/whoami/"
HEADER = "Cf-Access-Jwt-Assertion"


@pytest.fixture
def assertion_mode(settings, jwks_server):
    use_assertion_mode(settings, jwks_server.url, HEADER)
    return jwks_server


def refused(client, keys, problem: str, **headers):
    token = {
        "no-identity": None,
        "rejected": "not-a-jwt",
        "not-staff": mint(keys, subject="mallory", groups=["everyone"]),
    }[problem]
    if token is not None:
        headers[HEADER] = token
    return client.get(URL, headers=headers)


@pytest.mark.parametrize(
    ("problem", "status"), [("no-identity", 401), ("rejected", 401), ("not-staff", 403)]
)
def test_a_refusal_page_carries_every_pages_protective_headers(
    client, assertion_mode, keys, problem, status
):
    response = refused(client, keys, problem)

    assert response.status_code == status
    assert "frame-ancestors 'none'" in response["Content-Security-Policy"]
    assert "script-src 'self'" in response["Content-Security-Policy"]
    assert response["X-Frame-Options"] == "DENY"
    assert "no-store" in response["Cache-Control"]


def test_an_htmx_refusal_asks_for_a_whole_page_reload(client, assertion_mode, keys):
    response = refused(client, keys, "rejected", **{"HX-Request": "true"})

    assert response.status_code == 401
    assert response["HX-Refresh"] == "true"
    assert refused(client, keys, "rejected").get("HX-Refresh") is None


def denied_rows() -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action="signin", outcome="denied").order_by("id"))


@pytest.mark.parametrize("problem", ["rejected", "not-staff"])
def test_a_flood_of_refusals_writes_one_row_a_minute_per_address(
    client, assertion_mode, keys, problem
):
    for _ in range(20):
        assert refused(client, keys, problem).status_code in (401, 403)

    (row,) = denied_rows()
    assert row.client_address == "127.0.0.1"


def test_the_next_row_counts_the_refusals_not_recorded(client, assertion_mode, keys, monkeypatch):
    for _ in range(20):
        refused(client, keys, "rejected")
    monkeypatch.setattr(audit, "SAMPLE_SECONDS", 0)  # the minute has passed

    refused(client, keys, "rejected")

    _first, second = denied_rows()
    assert second.detail.startswith("19 more like this from this address not recorded; ")
    assert "not a JWT" in second.detail


def test_each_address_gets_its_own_row(client, assertion_mode, keys):
    for address in ("192.0.2.1", "192.0.2.2", "192.0.2.1", "192.0.2.2"):
        client.get(URL, headers={HEADER: "not-a-jwt"}, REMOTE_ADDR=address)

    assert [row.client_address for row in denied_rows()] == ["192.0.2.1", "192.0.2.2"]
