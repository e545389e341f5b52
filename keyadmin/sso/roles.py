"""Staff roles, from the SSO groups named in settings.

- viewer: list keys and see a key's detail;
- operator: everything a viewer may, plus create, enable, disable and delete keys;
- auditor: the audit trail (and nothing about keys unless also viewer or operator);
- act_for: start acting for a customer through an app's Custom JWT provider (keyadmin.sso.actfor),
  on apps that allow it. It grants nothing else: seeing or changing the customer's keys still
  takes viewer or operator.

The guard that enforces them on views is `keyadmin.sso.access.role_required`.

Roles are worked out on every request from the groups the identity carried at its last sign-in
(every request, for the remote-user and assertion modes) and the KEYADMIN_ROLE_GROUPS_* settings,
so a settings change applies at once. A user without a `Staff` record has no role.

Per app, `roles_on_app` narrows those roles further by the app's own role groups (the apps
file's `*_groups`): a role the app restricts is held on it only by members of one of its groups.
"""

from __future__ import annotations

from django.conf import settings

from keyadmin.appservices.apps import AppConfig
from keyadmin.sso.mode import DEV_ISSUER, configured_issuer, dev_sign_in_enabled
from keyadmin.sso.staff import staff_of

VIEWER = "viewer"
OPERATOR = "operator"
AUDITOR = "auditor"
ACT_FOR = "act_for"
ROLES = (VIEWER, OPERATOR, AUDITOR, ACT_FOR)

_SETTINGS = {
    VIEWER: "KEYADMIN_ROLE_GROUPS_VIEWER",
    OPERATOR: "KEYADMIN_ROLE_GROUPS_OPERATOR",
    AUDITOR: "KEYADMIN_ROLE_GROUPS_AUDITOR",
    ACT_FOR: "KEYADMIN_ROLE_GROUPS_ACT_FOR",
}


def roles_for(issuer: str, groups: list[str] | tuple[str, ...]) -> frozenset[str]:
    held = set(groups)
    if issuer == DEV_ISSUER:
        # The development sign-in stores the chosen role names as its groups.
        roles = held & set(ROLES) if dev_sign_in_enabled() else set()
    elif issuer != configured_issuer():
        roles = set()  # a session from another mode or provider: nothing
    else:
        roles = {role for role, name in _SETTINGS.items() if held & set(getattr(settings, name))}
    if OPERATOR in roles:
        roles.add(VIEWER)
    return frozenset(roles)


def roles_of(user) -> frozenset[str]:
    staff = staff_of(user)
    if staff is None:
        return frozenset()
    return roles_for(staff.issuer, staff.groups)


def roles_on_app(
    user_roles: frozenset[str], groups: list[str] | tuple[str, ...], app: AppConfig
) -> frozenset[str]:
    """The roles of `user_roles` (from `roles_for`) that hold on `app`; never more than given.

    A role the app leaves unrestricted (its groups None) holds as it is; a restricted one only
    for members of one of the app's groups for it. An operator on the app is a viewer there too.
    The development sign-in's groups are role names, so they never meet a restriction's group
    names: restricted roles are withheld from it, as from anyone outside those groups.
    """
    held = set(groups)
    roles = set()
    for role in user_roles:
        required = app.role_groups(role)
        if required is None or held & set(required):
            roles.add(role)
    if OPERATOR in roles:
        roles.add(VIEWER)
    return frozenset(roles)


def roles_of_on_app(user, app: AppConfig) -> frozenset[str]:
    """`roles_of(user)` narrowed to `app` by its role groups (`roles_on_app`)."""
    staff = staff_of(user)
    if staff is None:
        return frozenset()
    return roles_on_app(roles_for(staff.issuer, staff.groups), staff.groups, app)
