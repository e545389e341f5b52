"""Roles from SSO groups: viewer (list, detail), operator (+ create/enable/disable/delete), auditor.

Tiny views in tests/sso/views.py carry `role_required` exactly as the key views will; the audit
trail (`/audit/`) is a real one. Identities arrive as REMOTE_USER with groups in the environ.
"""

from __future__ import annotations

import dataclasses

import pytest
from django.contrib.auth import get_user_model

from keyadmin.appsfile import AppConfig
from keyadmin.context_processors import keyadmin as header_context
from keyadmin.models import AuditEvent, Staff
from keyadmin.sso.access import role_required
from keyadmin.sso.mode import DEV_ISSUER
from keyadmin.sso.roles import (
    ACT_FOR,
    AUDITOR,
    OPERATOR,
    VIEWER,
    roles_for,
    roles_of,
    roles_of_on_app,
    roles_on_app,
)
from keyadmin.sso.sources import StaffIdentity
from keyadmin.sso.staff import provision
from tests.sso.fixtures import STAFF, use_remote_user_mode

KEY_ID = "65a1b2c3d4e5f60718293a4b"
VIEWERS, OPERATORS, AUDITORS = "kv", "ko", "ka"
LIST, CHANGE, TRAIL, AUDIT = (
    "/_test/keys/",
    f"/_test/keys/{KEY_ID}/disable/",
    "/_test/trail/",
    "/audit/",
)


@pytest.fixture
def groups_mode(settings):
    use_remote_user_mode(settings)
    settings.KEYADMIN_ROLE_GROUPS_VIEWER = [VIEWERS]
    settings.KEYADMIN_ROLE_GROUPS_OPERATOR = [OPERATORS]
    settings.KEYADMIN_ROLE_GROUPS_AUDITOR = [AUDITORS]


def as_member(*groups: str) -> dict:
    return {"REMOTE_USER": "sam", "OIDC_CLAIM_groups": ",".join((STAFF, *groups))}


def statuses(client, environ: dict) -> dict[str, int]:
    return {
        "list": client.get(LIST, **environ).status_code,
        "change": client.post(CHANGE, **environ).status_code,
        "trail": client.get(TRAIL, **environ).status_code,
        "audit": client.get(AUDIT, **environ).status_code,
    }


@pytest.mark.parametrize(
    ("groups", "expected"),
    [
        pytest.param((), {"list": 403, "change": 403, "trail": 403, "audit": 403}, id="no-role"),
        pytest.param(
            (VIEWERS,), {"list": 200, "change": 403, "trail": 403, "audit": 403}, id="viewer"
        ),
        pytest.param(
            (OPERATORS,), {"list": 200, "change": 200, "trail": 403, "audit": 403}, id="operator"
        ),
        pytest.param(
            (AUDITORS,), {"list": 403, "change": 403, "trail": 200, "audit": 200}, id="auditor"
        ),
        pytest.param(
            (VIEWERS, AUDITORS),
            {"list": 200, "change": 403, "trail": 200, "audit": 200},
            id="viewer-and-auditor",
        ),
    ],
)
def test_each_role_gets_its_actions_and_nothing_else(client, groups_mode, groups, expected):
    assert statuses(client, as_member(*groups)) == expected


def test_it_explains_and_audits_a_refusal(client, groups_mode):
    response = client.post(CHANGE, **as_member(VIEWERS))

    assert response.status_code == 403
    assert "needs the operator role" in response.content.decode()
    denied = AuditEvent.objects.get(action="denied")
    assert denied.outcome == "denied"
    assert denied.staff_subject == "sam"
    assert denied.key_id == KEY_ID
    assert "change_key needs the operator role" in denied.detail


def test_it_refuses_htmx_requests_with_a_plain_403(client, groups_mode):
    response = client.post(CHANGE, headers={"HX-Request": "true"}, **as_member(VIEWERS))

    assert response.status_code == 403
    assert "You do not have access to this" in response.content.decode()


def test_it_sends_anonymous_requests_to_sign_in(client, settings):
    settings.DEBUG = True
    settings.KEYADMIN_SSO = "dev"
    settings.ROOT_URLCONF = "tests.sso.urls"

    assert client.get(LIST)["Location"] == "/sign-in/"
    assert client.get(LIST, headers={"HX-Request": "true"})["HX-Redirect"] == "/sign-in/"


def test_it_answers_401_to_anonymous_requests_behind_sso(client, groups_mode):
    assert client.get(LIST).status_code == 401


def test_it_sets_the_template_flags(client, groups_mode):
    viewer = client.get("/_test/flags/", **as_member(VIEWERS)).content.decode()
    operator = client.get("/_test/flags/", **as_member(OPERATORS, AUDITORS)).content.decode()

    assert viewer == "view=True operate=False audit=False roles=1"
    assert operator == "view=True operate=True audit=True roles=3"


def test_the_context_processor_gives_nothing_to_anonymous_requests(rf):
    from django.contrib.auth.models import AnonymousUser

    request = rf.get("/")
    request.user = AnonymousUser()

    context = header_context(request)

    assert context["staff_name"] == ""
    assert context["connection"] is None
    assert {name: context[name] for name in ("roles", "can_view", "can_operate", "can_audit")} == {
        "roles": frozenset(),
        "can_view": False,
        "can_operate": False,
        "can_audit": False,
    }


def test_role_changes_in_settings_apply_at_once(client, groups_mode, settings):
    assert client.post(CHANGE, **as_member(OPERATORS)).status_code == 200

    settings.KEYADMIN_ROLE_GROUPS_OPERATOR = ["keyadmin-oncall"]

    assert client.post(CHANGE, **as_member(OPERATORS)).status_code == 403


def test_staff_of_another_issuer_hold_no_roles(groups_mode):
    user = provision(StaffIdentity("https://another-idp.example", "sam", groups=(STAFF, OPERATORS)))

    assert roles_of(user) == frozenset()


def test_users_without_a_staff_record_hold_no_roles():
    user = get_user_model().objects.create_user(username="dev:Legacy")

    assert roles_of(user) == frozenset()


def test_dev_sign_in_grants_all_roles_by_default(client, settings):
    settings.DEBUG = True
    settings.KEYADMIN_SSO = "dev"
    settings.ROOT_URLCONF = "tests.sso.urls"

    client.post("/sign-in/", {"name": "Sam Support"})

    assert client.get("/_test/whoami/").json()["roles"] == [
        "act_for",
        "auditor",
        "operator",
        "viewer",
    ]
    assert Staff.objects.get().issuer == DEV_ISSUER


def test_dev_roles_can_be_chosen_and_die_with_debug(client, settings):
    settings.DEBUG = True
    settings.KEYADMIN_SSO = "dev"
    user = provision(StaffIdentity(DEV_ISSUER, "dev:Ann", name="Ann", groups=("auditor",)))

    assert roles_of(user) == frozenset({"auditor"})
    settings.DEBUG = False
    assert roles_of(user) == frozenset()


def test_role_required_refuses_unknown_roles():
    with pytest.raises(ValueError, match="unknown role"):
        role_required("admin")


def test_the_as_staff_test_helper_grants_exactly_the_given_roles(client, settings):
    from tests.sso.staff import as_staff

    as_staff(client, settings, "viewer")
    settings.ROOT_URLCONF = "tests.sso.urls"

    assert client.get(LIST).status_code == 200
    assert client.post(CHANGE).status_code == 403
    assert client.get("/_test/whoami/").json()["roles"] == ["viewer"]


# --- Acting for customers, and roles per app -------------------------------------------------

SHOP = AppConfig(
    key="shop",
    name="Shop",
    app_id="shop-abcde",
    base_url="https://services.cloud.mongodb.com",
    allowed_hosts=("services.cloud.mongodb.com",),
    environment="production",
)
EVERY_ROLE = frozenset({VIEWER, OPERATOR, AUDITOR, ACT_FOR})


def test_the_act_for_role_comes_from_its_own_groups(groups_mode, settings):
    settings.KEYADMIN_ROLE_GROUPS_ACT_FOR = ["keyadmin-support-leads"]

    issuer = settings.KEYADMIN_SSO_ISSUER
    assert roles_for(issuer, [VIEWERS, "keyadmin-support-leads"]) == {VIEWER, ACT_FOR}
    assert roles_for(issuer, [OPERATORS]) == {VIEWER, OPERATOR}


def test_an_app_without_its_own_groups_keeps_the_global_roles():
    assert roles_on_app(EVERY_ROLE, ["anything"], SHOP) == EVERY_ROLE
    assert roles_on_app(frozenset({VIEWER}), [], SHOP) == {VIEWER}


def test_an_apps_groups_narrow_a_role_to_their_members():
    production = dataclasses.replace(
        SHOP, operator_groups=("prod-operators",), act_for_groups=("support-leads",)
    )

    assert roles_on_app(EVERY_ROLE, ["staff"], production) == {VIEWER, AUDITOR}
    assert roles_on_app(EVERY_ROLE, ["prod-operators"], production) == {VIEWER, AUDITOR, OPERATOR}
    assert roles_on_app(EVERY_ROLE, ["support-leads"], production) == {VIEWER, AUDITOR, ACT_FOR}


def test_an_apps_groups_never_grant_a_role_the_staff_member_lacks():
    staging = dataclasses.replace(SHOP, operator_groups=("staging-operators",))

    assert roles_on_app(frozenset({VIEWER}), ["staging-operators"], staging) == {VIEWER}
    assert roles_on_app(frozenset(), ["staging-operators"], staging) == frozenset()


def test_an_empty_group_list_closes_a_role_on_the_app():
    read_only = dataclasses.replace(SHOP, operator_groups=(), act_for_groups=())

    assert roles_on_app(EVERY_ROLE, [OPERATORS, "anything"], read_only) == {VIEWER, AUDITOR}


def test_an_operator_on_the_app_also_views_it():
    viewers_restricted = dataclasses.replace(SHOP, viewer_groups=("prod-viewers",))

    assert roles_on_app(frozenset({VIEWER, OPERATOR}), ["x"], viewers_restricted) == {
        VIEWER,
        OPERATOR,
    }
    assert roles_on_app(frozenset({VIEWER}), ["x"], viewers_restricted) == frozenset()


def test_a_staff_members_roles_on_an_app_come_from_their_stored_groups(groups_mode):
    production = dataclasses.replace(SHOP, operator_groups=("prod-operators",))
    user = provision(
        StaffIdentity(
            "https://sso.example.com/realms/staff", "sam", groups=(STAFF, OPERATORS, VIEWERS)
        )
    )

    assert roles_of(user) == {VIEWER, OPERATOR}
    assert roles_of_on_app(user, production) == {VIEWER}
    assert roles_of_on_app(user, SHOP) == {VIEWER, OPERATOR}
    assert roles_of_on_app(get_user_model().objects.create_user(username="x"), SHOP) == set()
