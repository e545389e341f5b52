"""`as_staff`: sign a test client in as a staff member holding exactly the given roles.

For view tests that are about something else than signing in. It configures an SSO issuer whose
groups map one-to-one to the roles, provisions the staff member through the real code
(`keyadmin.sso.staff.provision`) and logs the client in, so `role_required` and the context flags
behave as in production. Needs pytest-django's `settings` fixture (restored after the test).
"""

from __future__ import annotations

from keyadmin.roles import ROLES
from keyadmin.sso.sources import Identity
from keyadmin.sso.staff import provision

TEST_ISSUER = "https://sso.test.invalid"
ALLOWED = "keyadmin-test-staff"


def as_staff(client, settings, *roles: str, name: str = "Sam Support"):
    """Log `client` in as `name` with `roles` (all three when none are given); return the user."""
    roles = roles or ROLES
    settings.KEYADMIN_SSO = "oidc"  # a login-based mode: the session itself carries the identity
    settings.KEYADMIN_OIDC_ISSUER = TEST_ISSUER
    settings.KEYADMIN_SSO_ALLOWED_GROUPS = [ALLOWED]
    settings.KEYADMIN_ROLE_GROUPS_VIEWER = ["role-viewer"]
    settings.KEYADMIN_ROLE_GROUPS_OPERATOR = ["role-operator"]
    settings.KEYADMIN_ROLE_GROUPS_AUDITOR = ["role-auditor"]
    subject = "sub-" + "-".join(name.lower().split())
    identity = Identity(
        issuer=TEST_ISSUER,
        subject=subject,
        name=name,
        email=f"{subject}@example.com",
        groups=(ALLOWED, *(f"role-{role}" for role in roles)),
    )
    user = provision(identity)
    client.force_login(user)
    return user
