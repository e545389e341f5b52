"""Make signed-in staff sessions directly in keyadmin's database (DEBUG is off: no dev sign-in).

    python -m bench.staff_sessions COUNT OUT_FILE [NAME [ROLE ...]]

Run with the same environment as the server (see `harness.keyadmin_env`: oidc mode with an issuer
that is never contacted, and role groups). Each staff member is provisioned through keyadmin's
own code (`keyadmin.sso.staff.provision`), as the SSO callback would, holding the given roles
(viewer and operator by default) through the configured role groups; its session holds what
`django.contrib.auth.login` puts there, naming the first configured authentication backend. The
session keys are written to OUT_FILE (mode 0600, JSON list), never printed.
"""

from __future__ import annotations

import json
import os
import sys

DEFAULT_ROLES = ("viewer", "operator")


def _subject(name: str, number: int) -> str:
    """A named staff member's SSO subject follows from the name ("Pat Support": sub-pat-support),
    so a test can find its rows in the audit trail; unnamed ones are numbered."""
    if name:
        slug = "-".join(name.lower().split())
        return f"sub-{slug}" if number == 0 else f"sub-{slug}-{number:02d}"
    return f"bench-staff-{number:02d}"


def main(count: int, out_file: str, name: str = "", roles: tuple[str, ...] = DEFAULT_ROLES) -> None:
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.contrib.sessions.backends.db import SessionStore
    from django.db import transaction

    from keyadmin.sso.mode import configured_issuer
    from keyadmin.sso.sources import StaffIdentity
    from keyadmin.sso.staff import provision

    issuer = configured_issuer()
    if not issuer:
        raise SystemExit("no SSO issuer is configured: staff would hold no role")
    groups = tuple(settings.KEYADMIN_SSO_ALLOWED_GROUPS)
    for role in roles:
        groups += tuple(getattr(settings, f"KEYADMIN_ROLE_GROUPS_{role.upper()}"))
    backend = settings.AUTHENTICATION_BACKENDS[0]
    keys = []
    with transaction.atomic():
        for number in range(count):
            user = provision(
                StaffIdentity(
                    issuer=issuer,
                    subject=_subject(name, number),
                    name=name or f"Load staff {number:02d}",
                    email=f"bench-staff-{number:02d}@example.com",
                    groups=groups,
                )
            )
            if user is None:
                raise SystemExit("provisioning refused the bench staff member")
            session = SessionStore()
            session[SESSION_KEY] = user._meta.pk.value_to_string(user)
            session[BACKEND_SESSION_KEY] = backend
            session[HASH_SESSION_KEY] = user.get_session_auth_hash()
            session.create()
            keys.append(session.session_key)
    fd = os.open(out_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(keys, out)


if __name__ == "__main__":
    main(
        int(sys.argv[1]),
        sys.argv[2],
        sys.argv[3] if len(sys.argv) > 3 else "",
        tuple(sys.argv[4:]) or DEFAULT_ROLES,
    )
