"""Sign-in throttling: a bounded number of attempts per window, held across workers and instances.

    attempt = throttle.appservices_signin(request, form.provider, form.credentials())
    throttle.begin(request, attempt)   # raises Throttled: answer 429, call nothing upstream
    ... sign in upstream ...
    throttle.succeeded(attempt)        # or throttle.abandoned(attempt) when nothing was learnt

An attempt is counted *before* it goes upstream, in one database transaction that locks the
counters it touches, so concurrent attempts on any worker or instance cannot all slip under a
limit: the attempt past a limit starts a block and never reaches App Services. Counters live in
the `SignInThrottle` table (every instance shares the database); no cache is involved, so nothing
depends on a shared cache server being configured.

What is counted, per window of KEYADMIN_SIGNIN_WINDOW_SECONDS:
- App Services sign-ins with a password or an API key, per target (the email, or the API key),
  per staff member and per client address; a success resets the target's and the staff member's
  counters and takes back its own count from the address (others behind that address may still
  be guessing).
- Anonymous App Services sign-ins (nothing to guess, but each makes an App Services user), per
  staff member and per address: every one counts.
- The development sign-in, per address: every one counts.
- Starting to act for a customer (keyadmin.keys.connect), per staff member and per staff member
  and app: every start counts, as anonymous sign-ins do (each can create an App Services user
  for a mistyped id, and each mints a token as strong as the customer's password).
An attempt that App Services could not judge (unreachable, failing, a location outside the
allowlist) gives its count back. A block lasts until the window ends, twice as long for each
block in a row, at most KEYADMIN_SIGNIN_MAX_BLOCK_SECONDS; starting one is audited once
("throttled"), the attempts it refuses are not.

Counters are keyed by an HMAC (SECRET_KEY) of what they count: the table never holds an email,
an API key or an address, and cannot be turned back into one without the key.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_variables

from keyadmin import audit, metrics
from keyadmin.models import SignInThrottle

# What a success does to a counter.
RESET = "reset"  # the guesser got in: forget the failures
GIVE_BACK = "give-back"  # take back this attempt's count only
KEEP = "keep"  # every attempt counts, successes too


@dataclass(frozen=True)
class Counter:
    scope: str
    key: str  # HMAC of the counted value
    limit: int
    on_success: str


@dataclass(frozen=True)
class Attempt:
    """One sign-in about to be tried: what it counts against, and for which audit action."""

    action: str
    counters: tuple[Counter, ...]
    # What a block's audit row is about when not the session's connection (an act-for start
    # names the app, customer and ticket tried, not those of the connection still kept).
    about: dict[str, str] | None = None


class Throttled(Exception):
    """Too many attempts: refuse this one, and ask the client to wait `retry_after` seconds."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"sign-ins throttled for {retry_after} s")
        self.retry_after = retry_after


def _key(scope: str, value: str) -> str:
    return salted_hmac("keyadmin.throttle", f"{scope}\0{value}", algorithm="sha256").hexdigest()


def _counter(scope: str, value: str, limit: int, on_success: str) -> Counter:
    return Counter(scope, _key(scope, value), limit, on_success)


def _address(request: HttpRequest) -> str:
    # Unparseable addresses share one counter: they cannot be told apart anyway.
    return audit.client_address(request) or "unknown"


@sensitive_variables()  # the target is the email or API key itself until it is hashed
def appservices_signin(request: HttpRequest, provider: str, credentials: dict[str, str]) -> Attempt:
    """What an App Services sign-in by this staff member with `credentials` counts against."""
    staff = str(request.user.pk)
    address = _address(request)
    if provider == "anon-user":
        limit = settings.KEYADMIN_SIGNIN_ANONYMOUS_LIMIT
        counters = (
            _counter("anonymous-staff", staff, limit, KEEP),
            _counter("anonymous-address", address, limit, KEEP),
        )
    else:
        if provider == "local-userpass":
            target = "email:" + credentials["username"].strip().casefold()
        else:
            target = "api-key:" + credentials["key"].strip()
        counters = (
            _counter("target", target, settings.KEYADMIN_SIGNIN_TARGET_LIMIT, RESET),
            # Given back, not reset: a staff member holding one good credential (a key of their
            # own) must not clear their whole count with it between guesses.
            _counter("staff", staff, settings.KEYADMIN_SIGNIN_STAFF_LIMIT, GIVE_BACK),
            _counter("address", address, settings.KEYADMIN_SIGNIN_ADDRESS_LIMIT, GIVE_BACK),
        )
    return Attempt("appservices-signin", counters)


def dev_signin(request: HttpRequest) -> Attempt:
    """The development sign-in, counted per client address."""
    limit = settings.KEYADMIN_DEV_SIGNIN_LIMIT
    return Attempt("signin", (_counter("dev-address", _address(request), limit, KEEP),))


def act_for_start(
    request: HttpRequest, app_key: str, about: dict[str, str] | None = None
) -> Attempt:
    """What starting to act for a customer on the app `app_key` counts against; `about` is the
    app, customer and ticket tried, for the row of a block it starts."""
    staff = str(request.user.pk)
    return Attempt(
        "act-for-start",
        (
            _counter("act-for-staff", staff, settings.KEYADMIN_ACT_FOR_STAFF_LIMIT, KEEP),
            _counter(
                "act-for-staff-app",
                f"{staff}\0{app_key}",
                settings.KEYADMIN_ACT_FOR_APP_LIMIT,
                KEEP,
            ),
        ),
        about,
    )


def _window() -> timedelta:
    return timedelta(seconds=settings.KEYADMIN_SIGNIN_WINDOW_SECONDS)


def _expires(row: SignInThrottle) -> datetime:
    # A block is remembered for one window after it ends, so the next one is longer.
    ends = row.window_start + _window()
    if row.blocked_until is not None:
        ends = max(ends, row.blocked_until + _window())
    return ends


def _seconds_until(moment: datetime, now: datetime) -> int:
    return max(1, math.ceil((moment - now).total_seconds()))


def _start_window(row: SignInThrottle, now: datetime) -> None:
    if row.blocked_until is None:
        row.blocks = 0  # a whole window went by without a block
    row.attempts = 0
    row.window_start = now
    row.blocked_until = None


def _block(row: SignInThrottle, now: datetime) -> None:
    doubled = row.window_start + _window() * (2 ** min(row.blocks, 16))
    longest = now + timedelta(seconds=settings.KEYADMIN_SIGNIN_MAX_BLOCK_SECONDS)
    row.blocked_until = max(min(doubled, longest), now + timedelta(seconds=1))
    row.blocks += 1


def begin(request: HttpRequest, attempt: Attempt) -> None:
    """Count `attempt`, or raise `Throttled` without counting it (and audit a block it starts)."""
    now = timezone.now()
    started: list[tuple[Counter, int]] = []
    waits: list[int] = []
    refused_by: list[str] = []
    with transaction.atomic():
        SignInThrottle.objects.filter(expires_at__lt=now).delete()
        rows = []
        # Always locked in the same order, so two attempts never wait on each other's rows.
        for counter in sorted(attempt.counters, key=lambda c: (c.scope, c.key)):
            row, _ = SignInThrottle.objects.select_for_update().get_or_create(
                scope=counter.scope,
                key=counter.key,
                defaults={"window_start": now, "expires_at": now + _window()},
            )
            if row.blocked_until is not None and row.blocked_until > now:
                waits.append(_seconds_until(row.blocked_until, now))
                refused_by.append(counter.scope)
            else:
                if row.blocked_until is not None or row.window_start + _window() <= now:
                    _start_window(row, now)
                if row.attempts >= counter.limit:
                    _block(row, now)
                    waits.append(_seconds_until(row.blocked_until, now))
                    started.append((counter, waits[-1]))
                    refused_by.append(counter.scope)
            rows.append(row)
        for row in rows:
            if not waits:
                row.attempts += 1
            row.expires_at = _expires(row)
            row.save()
    if started:
        # One row per block, even when two counters reach their limit on the same attempt.
        scopes = ", ".join(counter.scope for counter, _seconds in started)
        seconds = max(seconds for _counter, seconds in started)
        audit.record(
            request,
            "throttled",
            audit.DENIED,
            status=429,
            detail=f"{attempt.action}: too many per {scopes}; blocked for {seconds} s",
            about=attempt.about,
        )
    if waits:
        metrics.throttled([counter.scope for counter, _seconds in started], refused_by)
        raise Throttled(max(waits))


def _give_back(counters: list[Counter]) -> None:
    for counter in counters:
        SignInThrottle.objects.filter(scope=counter.scope, key=counter.key, attempts__gt=0).update(
            attempts=F("attempts") - 1
        )


def succeeded(attempt: Attempt) -> None:
    """The sign-in worked: reset what a guesser would, give back the address's count."""
    reset = [c for c in attempt.counters if c.on_success == RESET]
    for counter in reset:
        SignInThrottle.objects.filter(scope=counter.scope, key=counter.key).delete()
    _give_back([c for c in attempt.counters if c.on_success == GIVE_BACK])


def abandoned(attempt: Attempt) -> None:
    """The attempt told nothing about the credentials (App Services failed): it does not count."""
    _give_back(list(attempt.counters))


def message(refused: Throttled) -> str:
    return _("Too many sign-in attempts. Try again in %(seconds)s s.") % {
        "seconds": refused.retry_after
    }


def act_for_message(refused: Throttled) -> str:
    return _("You have started acting for customers too often. Try again in %(seconds)s s.") % {
        "seconds": refused.retry_after
    }


def refusal(response: HttpResponse, refused: Throttled) -> HttpResponse:
    """`response` as the answer to a throttled attempt: 429 with Retry-After."""
    response.status_code = 429
    response["Retry-After"] = str(refused.retry_after)
    return response


def fragment(request: HttpRequest, refused: Throttled) -> HttpResponse:
    """The htmx answer: the message as a notice, out of band; the page stays as it is.

    htmx swaps a 429 because base.html's htmx-config says so (responseHandling).
    """
    response = render(request, "keyadmin/throttled.html", {"text": message(refused)})
    response["HX-Reswap"] = "none"
    return refusal(response, refused)
