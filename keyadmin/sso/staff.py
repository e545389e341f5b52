"""From a verified identity to a staff user: matched by (issuer, subject), gated by group.

An account is created only for an identity in one of KEYADMIN_SSO_ALLOWED_GROUPS, and is
refreshed (name, email, groups) whenever the identity shows up again. Email is display only.
"""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils import timezone

from keyadmin.models import Staff
from keyadmin.sso.mode import DEV_ISSUER
from keyadmin.sso.sources import StaffIdentity


def staff_of(user) -> Staff | None:
    if user is None or not user.is_authenticated:
        return None
    try:
        return user.staff
    except Staff.DoesNotExist:
        return None


def may_be_staff(identity: StaffIdentity) -> bool:
    if identity.issuer == DEV_ISSUER:
        return True  # the developer picked their own roles; dev mode needs DEBUG anyway
    return bool(set(identity.groups) & set(settings.KEYADMIN_SSO_ALLOWED_GROUPS))


def _username(identity: StaffIdentity) -> str:
    if identity.issuer == DEV_ISSUER:
        return identity.subject  # "dev:<name>", as the development sign-in always made them
    digest = hashlib.sha256(f"{identity.issuer}\0{identity.subject}".encode()).hexdigest()
    return f"sso:{digest[:40]}"


def matches(staff: Staff | None, identity: StaffIdentity) -> bool:
    return staff is not None and (staff.issuer, staff.subject) == (
        identity.issuer,
        identity.subject,
    )


def provision(identity: StaffIdentity):
    """The active user for `identity`, created if allowed; None when it may not be staff."""
    if not may_be_staff(identity):
        return None
    fields = {
        "display_name": identity.name,
        "email": identity.email,
        "groups": list(identity.groups),
        "last_sign_in_at": timezone.now(),
    }
    try:
        staff = _upsert(identity, fields)
    except IntegrityError:
        # Two first requests of the same person raced; the other one created the row.
        staff = _upsert(identity, fields)
    return staff.user if staff.user.is_active else None


def identified(identity: StaffIdentity):
    """The active user for `identity` without recording a sign-in; None if it may not be staff.

    A known staff member is only kept in step with the identity (a write only when it changed);
    an unknown one is provisioned.
    """
    if not may_be_staff(identity):
        return None
    staff = (
        Staff.objects.select_related("user")
        .filter(issuer=identity.issuer, subject=identity.subject)
        .first()
    )
    if staff is None:
        return provision(identity)
    refresh(staff, identity)
    return staff.user if staff.user.is_active else None


def _upsert(identity: StaffIdentity, fields: dict) -> Staff:
    with transaction.atomic():
        staff = (
            Staff.objects.select_related("user")
            .filter(issuer=identity.issuer, subject=identity.subject)
            .first()
        )
        if staff is None:
            user, _created = get_user_model().objects.get_or_create(
                username=_username(identity),
                defaults={"first_name": identity.name[:150]},
            )
            if _created:
                user.set_unusable_password()
                user.save(update_fields=["password"])
            return Staff.objects.create(
                user=user, issuer=identity.issuer, subject=identity.subject, **fields
            )
        for name, value in fields.items():
            setattr(staff, name, value)
        staff.save(update_fields=list(fields))
        if staff.user.first_name != identity.name[:150]:
            staff.user.first_name = identity.name[:150]
            staff.user.save(update_fields=["first_name"])
        return staff


def refresh(staff: Staff, identity: StaffIdentity) -> None:
    """Keep the snapshot in step with a per-request identity (writes only when it changed)."""
    changed = {
        name: value
        for name, value in (
            ("display_name", identity.name),
            ("email", identity.email),
            ("groups", list(identity.groups)),
        )
        if getattr(staff, name) != value
    }
    if changed:
        for name, value in changed.items():
            setattr(staff, name, value)
        staff.save(update_fields=list(changed))
