"""Acting for a customer: the checks on what staff typed, and the Custom JWT that signs in as them.

App Services' Custom JWT provider signs in *as the user named by `sub`* whoever presents a token
signed with a key it trusts, so this token is as powerful as the customer's password. It is minted
only here, only for an app that allows acting for customers, and only for a customer id and
ticket that passed the app's checks (`mint_act_for_token` repeats them, so no caller can skip
them). The token lives at most `TOKEN_SECONDS` (it is used once, at sign-in); how long staff act
for the customer is a separate time box (`check_duration`).

Claims: `iss` "keyadmin", `sub` the customer, `aud` the app's audience, `iat`, `exp`, a unique
`jti`, RFC 8693's `act` {"sub", "iss"} naming the staff member, and the ticket as
`keyadmin_ticket`. RS256 with the bridge's key (providers using keyadmin's JWK URI, with the `kid`
header) or HS256 with the app's own signing key (providers with a manual signing key). Nothing
here logs a token, a secret, a customer id or a ticket.
"""

from __future__ import annotations

import re
import time
import unicodedata
import uuid

import jwt
from django.conf import settings
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_variables

from keyadmin.appservices.apps import AppConfig, all_apps, default_app
from keyadmin.models import Staff
from keyadmin.sso.bridge_key import load_private_key, public_jwk

ISSUER = "keyadmin"
TICKET_CLAIM = "keyadmin_ticket"
TOKEN_SECONDS = 120
MAX_TOKEN_SECONDS = 300
MAX_VALUE_LENGTH = 255
MAX_TOKEN_LENGTH = 2048  # App Services refuses longer Custom JWTs

# ActForRefused.reason: stable codes for the audit trail and tests; the message is for people.
DISABLED = "act-for-disabled"
CUSTOMER_MISSING = "customer-missing"
CUSTOMER_INVALID = "customer-invalid"
CUSTOMER_TOO_LONG = "customer-too-long"
CUSTOMER_PATTERN = "customer-pattern"
TICKET_MISSING = "ticket-missing"
TICKET_INVALID = "ticket-invalid"
TICKET_TOO_LONG = "ticket-too-long"
TICKET_PATTERN = "ticket-pattern"
DURATION_INVALID = "duration-invalid"
TOKEN_TOO_LONG = "token-too-long"  # noqa: S105 - a reason code, not a credential
CUSTOMER_IS_STAFF = "customer-is-staff"
REASONS = (
    DISABLED,
    CUSTOMER_MISSING,
    CUSTOMER_INVALID,
    CUSTOMER_TOO_LONG,
    CUSTOMER_PATTERN,
    TICKET_MISSING,
    TICKET_INVALID,
    TICKET_TOO_LONG,
    TICKET_PATTERN,
    DURATION_INVALID,
    TOKEN_TOO_LONG,
    CUSTOMER_IS_STAFF,
)


class ActForRefused(Exception):
    """A local refusal to act for a customer: `reason` is one of REASONS, `message` is shown."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def _hidden(ch: str) -> bool:
    # Control, format (zero-width, bidi), surrogate, private-use and unassigned characters, and
    # the line/paragraph separators: none belongs in an id, and each can make one look like another.
    return unicodedata.category(ch)[0] == "C" or unicodedata.category(ch) in ("Zl", "Zp")


def customer_label(app: AppConfig) -> str:
    """What the customer's identifier is called on this app's form."""
    return app.customer_label or _("Customer id")


def check_enabled(app: AppConfig) -> None:
    if not app.act_for_enabled:
        raise ActForRefused(DISABLED, _("This app does not allow acting for customers."))


def check_customer_id(app: AppConfig, value: str) -> str:
    """The customer id as the token will carry it (outer spaces removed), or ActForRefused."""
    check_enabled(app)
    value = (value or "").strip()
    if not value:
        raise ActForRefused(CUSTOMER_MISSING, _("Enter the id of the customer to act for."))
    if any(_hidden(ch) for ch in value):
        raise ActForRefused(
            CUSTOMER_INVALID,
            _("That customer id contains control or invisible characters: type it again."),
        )
    if len(value) > MAX_VALUE_LENGTH:
        raise ActForRefused(
            CUSTOMER_TOO_LONG,
            _("That customer id is too long (at most %(max)d characters).")
            % {"max": MAX_VALUE_LENGTH},
        )
    if app.customer_pattern and not _fullmatch(app.customer_pattern, value):
        raise ActForRefused(
            CUSTOMER_PATTERN,
            _("That customer id does not match the pattern this app expects (%(pattern)s).")
            % {"pattern": app.customer_pattern},
        )
    if shares_bridge_provider(app) and Staff.objects.filter(subject=value).exists():
        raise ActForRefused(
            CUSTOMER_IS_STAFF,
            _(
                "That id is a staff member's own App Services user on this app (the bridge "
                "signs staff in with it): keyadmin does not act for staff."
            ),
        )
    return value


def shares_bridge_provider(app: AppConfig) -> bool:
    """Whether `app`'s Custom JWT provider is the one the bridge signs staff in to.

    There a token naming a staff member's SSO subject is their own user (the provider does not
    read `act`), so "acting for" that id would hand over a colleague's own keys.
    """
    if not settings.KEYADMIN_APPSERVICES_BRIDGE:
        return False
    bridge_audience = settings.KEYADMIN_BRIDGE_AUDIENCE or settings.APPSERVICES_APP_ID
    return app.key == default_app().key or app.jwt_audience == bridge_audience


def check_ticket(app: AppConfig, value: str) -> str:
    """The reason or ticket reference as recorded (outer spaces removed), or ActForRefused."""
    check_enabled(app)
    value = (value or "").strip()
    if not value:
        raise ActForRefused(
            TICKET_MISSING, _("Give the reason or ticket reference for acting for this customer.")
        )
    if any(_hidden(ch) for ch in value):
        raise ActForRefused(
            TICKET_INVALID,
            _("That ticket reference contains control or invisible characters: type it again."),
        )
    if len(value) > MAX_VALUE_LENGTH:
        raise ActForRefused(
            TICKET_TOO_LONG,
            _("That ticket reference is too long (at most %(max)d characters).")
            % {"max": MAX_VALUE_LENGTH},
        )
    if app.ticket_pattern and not _fullmatch(app.ticket_pattern, value):
        raise ActForRefused(
            TICKET_PATTERN,
            _("That ticket reference does not match the pattern this app expects (%(pattern)s).")
            % {"pattern": app.ticket_pattern},
        )
    return value


def check_duration(app: AppConfig, minutes: int | str | None) -> int:
    """How many minutes to act for (None: the app's default), or ActForRefused."""
    check_enabled(app)
    if minutes is None or minutes == "":
        return app.default_act_for_minutes
    try:
        number = minutes if isinstance(minutes, int) else int(str(minutes).strip())
    except ValueError:
        number = 0
    if isinstance(minutes, bool) or not 1 <= number <= app.max_act_for_minutes:
        raise ActForRefused(
            DURATION_INVALID,
            _("Choose a duration of 1 to %(max)d minutes.") % {"max": app.max_act_for_minutes},
        )
    return number


def _fullmatch(pattern: str, value: str) -> bool:
    # The whole value must match, anchored or not: "cus_1; other" must not pass "cus_[0-9]+".
    # ASCII classes: with Unicode ones, `\d` passes Arabic-Indic or fullwidth digits, tickets
    # that look like SUP-12 on screen but that no search of the audit trail for SUP-12 finds.
    return re.fullmatch(pattern, value, re.ASCII) is not None


def uses_bridge_key() -> bool:
    """Whether an app acts for customers with RS256, so keyadmin's JWKS must be served."""
    return any(app.act_for_enabled and app.jwt_algorithm == "RS256" for app in all_apps())


@sensitive_variables("token", "key", "secret")
def mint_act_for_token(
    app: AppConfig, customer_id: str, staff_subject: str, staff_issuer: str, ticket: str
) -> str:
    """A Custom JWT that signs in to `app` as `customer_id`, naming the staff member in `act`.

    Raises ActForRefused when the app does not allow acting for customers, a value fails its
    check or the token would be too long for App Services, and ValueError without the staff
    member's subject and issuer.
    """
    customer_id = check_customer_id(app, customer_id)
    ticket = check_ticket(app, ticket)
    if not staff_subject or not staff_issuer:
        raise ValueError("acting for a customer needs the staff member's subject and issuer")
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "sub": customer_id,
        "aud": app.jwt_audience,
        "iat": now,
        "exp": now + min(TOKEN_SECONDS, MAX_TOKEN_SECONDS),
        "jti": uuid.uuid4().hex,
        "act": {"sub": staff_subject, "iss": staff_issuer},
        TICKET_CLAIM: ticket,
    }
    if app.jwt_algorithm == "HS256":
        if app.jwt_hs256_secret is None:
            raise ValueError(f"app {app.key!r} signs with HS256 but has no signing key")
        secret = app.jwt_hs256_secret.reveal()
        token = jwt.encode(claims, secret, algorithm="HS256", headers={"typ": "JWT"})
    else:
        key = load_private_key(settings.KEYADMIN_BRIDGE_PRIVATE_KEY)
        kid = public_jwk(key.public_key(), settings.KEYADMIN_BRIDGE_KEY_ID or None)["kid"]
        token = jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid, "typ": "JWT"})
    if len(token) > MAX_TOKEN_LENGTH:
        # Long non-ASCII ids and tickets grow sixfold in the token's JSON.
        raise ActForRefused(
            TOKEN_TOO_LONG,
            _(
                "The sign-in token would be longer than App Services accepts: "
                "shorten the ticket reference."
            ),
        )
    return token
