"""Staff sessions follow the configured identity source, request by request.

- remote-user and assertion: the front server or proxy vouches for every request. The staff
  session is opened on the first request (assertion mode: the first one whose view writes to the
  session; until then each request is identified on its own; a session opened only to see its
  cookie come back, `session.open_on_return`, is signed in by the request that brings it, one
  however many bring it at once), kept while the same subject keeps arriving, and ended (App
  Services token revoked) the moment the subject changes or vanishes or loses its group. A
  request with no identity gets 401, one with a bad identity 401, one outside the allowed groups
  403, and none of them a session; those refusals are audited at most once a minute per client
  address.
- oidc and dev: the session was opened by a login; it is ended if it belongs to another issuer
  (the mode or provider changed since).
- every mode: a session idle for KEYADMIN_SESSION_IDLE_SECONDS ends first.

Place after AuthenticationMiddleware and MessageMiddleware.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable

from django.contrib.auth import login
from django.http import HttpRequest, HttpResponse
from django.urls import NoReverseMatch, get_script_prefix, get_urlconf, reverse

from keyadmin import audit
from keyadmin.sso import access, cookie_check, session, staff
from keyadmin.sso.backends import STAFF_BACKEND
from keyadmin.sso.mode import DEV_ISSUER, configured_issuer
from keyadmin.sso.sources import IdentityRejected, per_request_source

logger = logging.getLogger(__name__)

# Open without an identity: App Services fetches the bridge's JWKS with no SSO in front of it,
# the provider sends signed-out browsers back to this page, and health checks carry no identity.
EXEMPT_URL_NAMES = ("sso:jwks", "sso:signed-out", "healthz", "readyz", "metrics")


_exempt_by_urlconf: dict[tuple[str | None, str], frozenset[str]] = {}


def _exempt_paths() -> frozenset[str]:
    # Reversed once per URL configuration and script prefix, not on every request.
    where = (get_urlconf(), get_script_prefix())
    if where not in _exempt_by_urlconf:
        paths = set()
        for name in EXEMPT_URL_NAMES:
            with contextlib.suppress(NoReverseMatch):  # keyadmin.sso.urls not included
                paths.add(reverse(name))
        _exempt_by_urlconf[where] = frozenset(paths)
    return _exempt_by_urlconf[where]


def staff_identity(get_response: Callable[[HttpRequest], HttpResponse]):
    def middleware(request: HttpRequest) -> HttpResponse:
        source = per_request_source()
        if request.path in _exempt_paths():
            return get_response(request)
        if source is not None and source.mode == "assertion":
            cookie_check.strip(request)  # before any view builds a URL from this one
        session.end_if_idle(request)
        if source is None:
            _check_session_issuer(request)
            return get_response(request)
        try:
            found = source.identify(request)
        except IdentityRejected as exc:
            logger.warning("%s identity rejected: %s", source.mode, exc.reason)
            session.end_session(request, "the SSO identity was rejected")
            audit.record_sampled(request, "signin", audit.DENIED, detail=exc.reason)
            return access.sso_error(request, "rejected")
        if found is None:
            session.end_session(request, "the SSO identity is gone")
            return access.sso_error(request, "no-identity")
        current = staff.staff_of(request.user)
        if staff.matches(current, found):
            if not staff.may_be_staff(found):
                session.end_session(request, "no longer in an allowed group")
                audit.record(
                    request,
                    "signin",
                    audit.DENIED,
                    identity=found,
                    detail="not in an allowed group",
                )
                return access.sso_error(request, "not-staff")
            staff.refresh(current, found)
            # The cookie of an `open_on_return` came back: signed in by this request, or by
            # another that brought it back at the same time and this one waited for.
            if not session.finish_sign_in(request):
                return access.sign_in_under_way(request)
            return get_response(request)
        session.end_session(request, "another SSO subject arrived")
        deferred = source.mode == "assertion" and not request.session.keys()
        user = staff.identified(found) if deferred else staff.provision(found)
        if user is None:
            audit.record_sampled(
                request, "signin", audit.DENIED, identity=found, detail="not in an allowed group"
            )
            return access.sso_error(request, "not-staff")
        if deferred:
            return _for_this_request(request, user, get_response)
        login(request, user, backend=STAFF_BACKEND)
        session.after_sign_in(request, user)
        return get_response(request)

    return middleware


def _for_this_request(request: HttpRequest, user, get_response) -> HttpResponse:
    """Serve a request that arrived without a session as `user`, opening a session only if the
    view wrote to it (an App Services sign-in does; a notice alone goes into a session that
    signs nobody in, and the next request opens the staff session).

    A proxy assertion identifies every request anyway, so a client that keeps no cookies (a
    script behind a service token) costs no session row and no sign-in audit row per request.
    A view that needs the session on the next request (the bridge's, in `appservices_required`)
    opens it with `session.open_on_return`: signed in only once its cookie comes back.
    """
    request.user = user
    request.staff_session_deferred = True
    response = get_response(request)
    if request.session.modified:
        login(request, user, backend=STAFF_BACKEND)
        session.after_sign_in(request, user)
    return response


def _check_session_issuer(request: HttpRequest) -> None:
    issuer = configured_issuer()
    if issuer is None or not request.user.is_authenticated:
        return
    current = staff.staff_of(request.user)
    # Users without a Staff record predate the SSO modes (development sign-ins); in dev mode
    # they stay, in oidc mode they go.
    if (current is None and issuer != DEV_ISSUER) or (
        current is not None and current.issuer != issuer
    ):
        session.end_session(request, "the session belongs to another sign-in mode")
