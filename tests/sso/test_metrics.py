"""Staff sign-ins in /metrics: by KEYADMIN_SSO mode and outcome, refusals sampled out included."""

from __future__ import annotations

import pytest

from keyadmin.metrics import REGISTRY
from keyadmin.models import AuditEvent
from tests.sso.fixtures import OPERATORS, STAFF, use_remote_user_mode

URL = "/_test/whoami/"
ENVIRON = {
    "REMOTE_USER": "7f3c-alice",
    "OIDC_CLAIM_groups": f"{STAFF},{OPERATORS}",
    "OIDC_CLAIM_name": "Alice Operator",
    "OIDC_CLAIM_email": "alice@example.com",
}
OUTSIDER = {**ENVIRON, "OIDC_CLAIM_groups": "everyone"}


@pytest.fixture(autouse=True)
def remote_user_mode(settings):
    use_remote_user_mode(settings)


def signins(outcome: str) -> float:
    labels = {"mode": "remote-user", "outcome": outcome}
    return REGISTRY.get_sample_value("keyadmin_staff_signins_total", labels) or 0


def test_a_sign_in_is_counted_under_its_mode(client):
    before = signins("ok")

    assert client.get(URL, **ENVIRON).status_code == 200
    assert client.get(URL, **ENVIRON).status_code == 200  # the same session: no new sign-in

    assert signins("ok") == before + 1


def test_every_refusal_is_counted_though_the_trail_keeps_one_a_minute(client):
    before = signins("denied")

    for _ in range(3):
        assert client.get(URL, **OUTSIDER).status_code == 403

    assert AuditEvent.objects.filter(action="signin", outcome="denied").count() == 1
    assert signins("denied") == before + 3
