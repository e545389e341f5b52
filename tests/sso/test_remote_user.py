"""KEYADMIN_SSO=remote-user: REMOTE_USER in the WSGI environ is the identity; headers never are.

Apache mod_auth_openidc + mod_wsgi put the OP's `sub` in REMOTE_USER and the claims in
OIDC_CLAIM_* environ variables. A client can only send headers, which WSGI files under HTTP_*.
"""

from __future__ import annotations

import io
import json
from wsgiref.util import setup_testing_defaults

import pytest
import requests
from django.contrib.sessions.models import Session
from django.core.exceptions import ImproperlyConfigured
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.test import AsyncRequestFactory

from keyadmin.models import AuditEvent, Staff
from keyadmin.sso import config
from keyadmin.sso.sources import IdentityRejected, RemoteUserSource
from tests.sso.fixtures import OPERATORS, STAFF, use_remote_user_mode

URL = "/_test/whoami/"
ISSUER = "https://sso.example.com/realms/staff"
ENVIRON = {
    "REMOTE_USER": "7f3c-alice",
    "OIDC_CLAIM_groups": f"{STAFF},{OPERATORS}",
    "OIDC_CLAIM_name": "Alice Operator",
    "OIDC_CLAIM_email": "alice@example.com",
}


@pytest.fixture
def remote_user_mode(settings):
    use_remote_user_mode(settings)


def test_it_signs_in_from_remote_user_in_the_environ(client, remote_user_mode):
    response = client.get(URL, **ENVIRON)

    assert response.status_code == 200
    assert response.json() == {
        "issuer": ISSUER,
        "subject": "7f3c-alice",
        "name": "Alice Operator",
        "groups": [OPERATORS, STAFF],
        "roles": ["operator", "viewer"],
    }
    assert Session.objects.count() == 1
    assert AuditEvent.objects.get(action="signin").staff_subject == "7f3c-alice"


def test_it_works_through_a_plain_wsgi_environ(remote_user_mode):
    """The WSGI handler itself, fed an environ like mod_wsgi's."""
    environ = {"PATH_INFO": URL, "HTTP_HOST": "testserver", **ENVIRON}
    setup_testing_defaults(environ)
    environ["wsgi.input"] = io.BytesIO(b"")
    seen = {}

    def start_response(status, headers, exc_info=None):
        seen["status"] = status
        seen["headers"] = dict(headers)

    # As Django's test client does: keep the test's database connection open across the request.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        body = b"".join(WSGIHandler()(environ, start_response))
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)

    assert seen["status"].startswith("200")
    assert json.loads(body)["subject"] == "7f3c-alice"
    assert "sessionid" in seen["headers"]["Set-Cookie"]
    assert len(seen["headers"]["X-Request-ID"]) == 32


@pytest.mark.parametrize(
    "header",
    ["Remote-User", "X-Forwarded-User", "X_Forwarded_User", "X-Remote-User", "REMOTE_USER"],
)
def test_it_never_takes_identity_from_a_header(client, remote_user_mode, header):
    response = client.get(
        URL, headers={header: "mallory", "OIDC-CLAIM-groups": STAFF, "X-Forwarded-Groups": STAFF}
    )

    assert response.status_code == 401
    assert not Session.objects.exists()
    assert not Staff.objects.exists()


def test_it_never_takes_groups_from_a_header(client, remote_user_mode):
    environ = {**ENVIRON, "OIDC_CLAIM_groups": "everyone"}

    response = client.get(URL, headers={"OIDC-CLAIM-groups": STAFF}, **environ)

    assert response.status_code == 403
    assert not Session.objects.exists()


def test_it_refuses_forged_headers_over_a_real_wsgi_server(live_server, settings):
    """Straight at a running server, as an attacker who bypasses the front server would."""
    use_remote_user_mode(settings)
    session = requests.Session()
    session.trust_env = False

    for header in ("Remote-User", "X-Forwarded-User", "X_Forwarded_User", "X-Remote-User"):
        response = session.get(f"{live_server.url}{URL}", headers={header: "mallory"}, timeout=5)
        assert response.status_code == 401, header
        assert "sessionid" not in response.cookies
    assert not Staff.objects.exists()


def test_it_refuses_staff_outside_the_allowed_groups(client, remote_user_mode):
    response = client.get(URL, **{**ENVIRON, "OIDC_CLAIM_groups": "everyone,contractors"})

    assert response.status_code == 403
    assert "not on the keyadmin staff list" in response.content.decode()
    assert not Session.objects.exists()
    assert AuditEvent.objects.get(outcome="denied").staff_subject == "7f3c-alice"


def test_it_ends_the_session_when_remote_user_changes_or_goes(client, remote_user_mode):
    assert client.get(URL, **ENVIRON).status_code == 200

    bob = client.get(URL, **{**ENVIRON, "REMOTE_USER": "9a1d-bob"})
    gone = client.get(URL)

    assert bob.json()["subject"] == "9a1d-bob"
    assert gone.status_code == 401
    assert not Session.objects.exists()
    assert list(AuditEvent.objects.order_by("id").values_list("action", "staff_subject")) == [
        ("signin", "7f3c-alice"),
        ("signout", "7f3c-alice"),
        ("signin", "9a1d-bob"),
        ("signout", "9a1d-bob"),
    ]


def test_it_refuses_remote_user_under_asgi():
    source = RemoteUserSource(
        ISSUER, "OIDC_CLAIM_groups", "OIDC_CLAIM_name", "OIDC_CLAIM_email", ","
    )
    request = AsyncRequestFactory().get(URL, headers={"Remote-User": "mallory"})

    with pytest.raises(IdentityRejected):
        source.identify(request)


def test_it_refuses_a_malformed_remote_user(client, remote_user_mode):
    response = client.get(URL, **{**ENVIRON, "REMOTE_USER": "alice\nadmin"})

    assert response.status_code == 401
    assert not Session.objects.exists()


def test_it_will_not_start_reading_groups_from_a_header():
    values = {
        "KEYADMIN_SSO": "remote-user",
        "KEYADMIN_SSO_ISSUER": ISSUER,
        "KEYADMIN_SSO_ALLOWED_GROUPS": [STAFF],
        "KEYADMIN_ROLE_GROUPS_VIEWER": [STAFF],
        "KEYADMIN_SSO_REMOTE_GROUPS_VAR": "HTTP_X_FORWARDED_GROUPS",
        "KEYADMIN_SSO_REMOTE_NAME_VAR": "OIDC_CLAIM_name",
        "KEYADMIN_SSO_REMOTE_EMAIL_VAR": "OIDC_CLAIM_email",
    }

    with pytest.raises(ImproperlyConfigured, match="names a request header"):
        config.check(values)
