# ruff: noqa: F811 - pytest fixtures are imported, then named as test arguments
"""Group names are compared exactly: a name that differs by an invisible or padding character
is refused, never cleaned up into a privileged one, and a group is never split into two."""

from __future__ import annotations

import jwt
import pytest
from django.core.exceptions import ImproperlyConfigured

from keyadmin.sso import config
from keyadmin.sso.sources import claim_groups, split_groups
from tests.sso.fixtures import (
    AUDITORS,
    OPERATORS,
    RSA_KID,
    STAFF,
    claims,
    jwks_server,  # noqa: F401 - fixture
    keys,  # noqa: F401 - fixture
    mint,
    use_assertion_mode,
    use_remote_user_mode,
)

URL = "/_test/whoami/"
HEADER = "Cf-Access-Jwt-Assertion"

LOOKALIKES = [
    pytest.param("keyadmin-\u200boperators", id="zero-width-space"),
    pytest.param(" keyadmin-operators", id="leading-space"),
    pytest.param("keyadmin-operators ", id="trailing-space"),
    pytest.param("keyadmin-operators\u00a0", id="trailing-nbsp"),
    pytest.param("keyadmin-auditors\u2060", id="word-joiner"),
    pytest.param("\u202ekeyadmin-auditors", id="bidi-override"),
    pytest.param("keyadmin-operators\n", id="newline"),
    pytest.param("keyadmin-\x00operators", id="nul"),
]
STAFF_LOOKALIKES = ["keyadmin-\u200bstaff", " keyadmin-staff", "keyadmin-staff\u2060"]


def whoami(client, **environ):
    response = client.get(URL, **environ)
    return response.status_code, (response.json()["roles"] if response.status_code == 200 else [])


@pytest.mark.parametrize("group", LOOKALIKES)
def test_a_lookalike_group_in_an_assertion_grants_nothing(
    client, settings, jwks_server, keys, group
):
    use_assertion_mode(settings, jwks_server.url, HEADER)

    status, roles = whoami(client, HTTP_CF_ACCESS_JWT_ASSERTION=mint(keys, groups=[STAFF, group]))

    assert (status, roles) == (200, ["viewer"])


@pytest.mark.parametrize("group", STAFF_LOOKALIKES)
def test_a_lookalike_staff_group_in_an_assertion_lets_nobody_in(
    client, settings, jwks_server, keys, group
):
    use_assertion_mode(settings, jwks_server.url, HEADER)

    status, _roles = whoami(client, HTTP_CF_ACCESS_JWT_ASSERTION=mint(keys, groups=[group]))

    assert status == 403


def test_a_groups_claim_that_is_one_string_is_one_group(client, settings, jwks_server, keys):
    use_assertion_mode(settings, jwks_server.url, HEADER)
    joined = {**claims(), "groups": f"{STAFF},{OPERATORS}"}
    token = jwt.encode(joined, keys.rsa, algorithm="RS256", headers={"kid": RSA_KID})

    status, _roles = whoami(client, HTTP_CF_ACCESS_JWT_ASSERTION=token)

    assert status == 403


@pytest.mark.parametrize("group", LOOKALIKES)
def test_a_lookalike_group_from_the_front_server_grants_nothing(client, settings, group):
    use_remote_user_mode(settings)
    environ = {"REMOTE_USER": "7f3c-alice", "OIDC_CLAIM_groups": f"{STAFF},{group}"}

    assert whoami(client, **environ) == (200, ["viewer"])


def test_an_idp_group_with_a_comma_in_its_name_grants_nothing(client, settings):
    use_remote_user_mode(settings)
    # mod_auth_openidc joins the array ["keyadmin-staff", "EMEA, keyadmin-operators"] with ",".
    environ = {"REMOTE_USER": "7f3c-alice", "OIDC_CLAIM_groups": f"{STAFF},EMEA, {OPERATORS}"}

    assert whoami(client, **environ) == (200, ["viewer"])


def test_the_front_servers_separator_is_configured(client, settings):
    use_remote_user_mode(settings)
    settings.KEYADMIN_SSO_REMOTE_GROUPS_SEPARATOR = "|"
    environ = {"REMOTE_USER": "7f3c-alice", "OIDC_CLAIM_groups": f"EMEA, ops|{STAFF}|{AUDITORS}"}

    assert whoami(client, **environ) == (200, ["auditor", "viewer"])


def test_group_parsing_never_edits_a_name():
    assert split_groups(f"{STAFF},{OPERATORS}", ",") == (OPERATORS, STAFF)
    assert split_groups(f"{STAFF}, {OPERATORS}", ",") == (STAFF,)
    assert split_groups(f"{STAFF},,", ",") == (STAFF,)
    assert claim_groups([STAFF, f"{OPERATORS}\u200b", 7, None]) == (STAFF,)
    assert claim_groups(f"{STAFF},{OPERATORS}") == (f"{STAFF},{OPERATORS}",)


def test_a_configured_group_holding_the_separator_stops_start_up():
    values = {
        "KEYADMIN_SSO": "remote-user",
        "KEYADMIN_SSO_ISSUER": "https://sso.example.com/realms/staff",
        "KEYADMIN_SSO_ALLOWED_GROUPS": [STAFF],
        "KEYADMIN_ROLE_GROUPS_VIEWER": [STAFF],
        "KEYADMIN_SSO_REMOTE_GROUPS_VAR": "OIDC_CLAIM_groups",
        "KEYADMIN_SSO_REMOTE_NAME_VAR": "OIDC_CLAIM_name",
        "KEYADMIN_SSO_REMOTE_EMAIL_VAR": "OIDC_CLAIM_email",
        "KEYADMIN_SSO_REMOTE_GROUPS_SEPARATOR": "-",
    }

    with pytest.raises(ImproperlyConfigured, match="contain the group separator"):
        config.check(values)
    with pytest.raises(ImproperlyConfigured, match="exact printable text"):
        config.check({**values, "KEYADMIN_SSO_REMOTE_GROUPS_SEPARATOR": ", "})
