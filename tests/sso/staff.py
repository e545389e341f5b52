"""Staff members for tests, provisioned through the real code (`keyadmin.sso.staff.provision`).

`configure(settings)` sets up an SSO issuer whose groups map one-to-one to the roles;
`provision_staff(client, *roles)` logs a client in as a staff member holding those roles, so
`role_required` and the template flags behave as in production. `as_staff` does both.
"""

from __future__ import annotations

from keyadmin.sso.roles import ROLES
from keyadmin.sso.sources import StaffIdentity
from keyadmin.sso.staff import provision

TEST_ISSUER = "https://sso.test.invalid"
ALLOWED = "keyadmin-test-staff"


def configure(settings) -> None:
    """Point pytest-django's `settings` at the test issuer (restored after the test)."""
    settings.KEYADMIN_SSO = "oidc"  # a login-based mode: the session itself carries the identity
    settings.KEYADMIN_OIDC_ISSUER = TEST_ISSUER
    settings.KEYADMIN_SSO_ALLOWED_GROUPS = [ALLOWED]
    settings.KEYADMIN_ROLE_GROUPS_VIEWER = ["role-viewer"]
    settings.KEYADMIN_ROLE_GROUPS_OPERATOR = ["role-operator"]
    settings.KEYADMIN_ROLE_GROUPS_AUDITOR = ["role-auditor"]
    settings.KEYADMIN_ROLE_GROUPS_ACT_FOR = ["role-act_for"]


def staff_user(*roles: str, name: str = "Sam Support"):
    """A provisioned staff user holding `roles` (all three when none are given)."""
    roles = roles or ROLES
    subject = "sub-" + "-".join(name.lower().split())
    return provision(
        StaffIdentity(
            issuer=TEST_ISSUER,
            subject=subject,
            name=name,
            email=f"{subject}@example.com",
            groups=(ALLOWED, *(f"role-{role}" for role in roles)),
        )
    )


def provision_staff(client, *roles: str, name: str = "Sam Support"):
    """Log `client` in as `name` with `roles`; needs `configure(settings)` first."""
    user = staff_user(*roles, name=name)
    client.force_login(user)
    return user


def as_staff(client, settings, *roles: str, name: str = "Sam Support"):
    """Log `client` in as `name` with `roles` (all three when none are given); return the user."""
    configure(settings)
    return provision_staff(client, *roles, name=name)
