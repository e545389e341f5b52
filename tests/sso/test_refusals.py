# ruff: noqa: F811 - pytest fixtures are imported, then named as test arguments
"""What the identity middleware answers when it refuses a request: the same protective headers
as every page, and an audit trail that a flood of refusals cannot bury."""

from __future__ import annotations

import pytest

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
