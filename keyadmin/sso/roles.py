"""Staff roles, from the SSO groups named in settings.

- viewer: list keys and see a key's detail;
- operator: everything a viewer may, plus create, enable, disable and delete keys;
- auditor: the audit trail (and nothing about keys unless also viewer or operator).

The guard that enforces them on views is `keyadmin.sso.access.role_required`.

Roles are worked out on every request from the groups the identity carried at its last sign-in
(every request, for the remote-user and assertion modes) and the KEYADMIN_ROLE_GROUPS_* settings,
so a settings change applies at once. A user without a `Staff` record has no role.
"""

from __future__ import annotations

from django.conf import settings

from keyadmin.sso.mode import DEV_ISSUER, configured_issuer, dev_sign_in_enabled
from keyadmin.sso.staff import staff_of

VIEWER = "viewer"
OPERATOR = "operator"
AUDITOR = "auditor"
ROLES = (VIEWER, OPERATOR, AUDITOR)

_SETTINGS = {
    VIEWER: "KEYADMIN_ROLE_GROUPS_VIEWER",
    OPERATOR: "KEYADMIN_ROLE_GROUPS_OPERATOR",
    AUDITOR: "KEYADMIN_ROLE_GROUPS_AUDITOR",
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
