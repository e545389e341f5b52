"""Telling a client that keeps no cookies from one that has not been given its session yet.

In `assertion` mode a request without a session cookie is identified from its assertion alone
(`keyadmin.sso.session.is_deferred`), so a first visit and a client that drops every cookie (a
script or monitor behind the proxy, a browser with cookies blocked for this site) look the same.
A page that needs a session (the App Services bridge's sign-in does) opens one and sends the
client back to itself with `redirect_to_self`, which adds a mark to the URL. A request that
carries a valid mark and still no session (`came_back_without_cookie`) dropped the cookie set
a moment ago: it gets a page saying so, instead of another session and another redirect to the
same URL, forever.

Why a query parameter and not a second, test cookie: a client that drops the session cookie
drops a test cookie too, so its return would look like a first visit again. The redirect's
Location is the one thing that every client following the redirect brings back.

The mark is not a secret and holds nothing sensitive: a timestamp and a MAC (SECRET_KEY, salted
with the staff member's issuer and subject, which are not in the mark), never a session key or
an identity. The MAC means nobody else can make a staff member see the error page: a mark made
for someone else, altered, or older than MAX_AGE_SECONDS (a bookmark, a shared link) is no mark,
and the visit starts afresh. `strip` takes the mark out of every request before any view sees
it, so no link, form or `next` a page builds from its own URL carries it on; keyadmin.js takes
it out of the address bar.
"""

from __future__ import annotations

from django.core import signing
from django.http import HttpRequest, HttpResponseRedirect, QueryDict
from django.utils.encoding import escape_uri_path

from keyadmin.sso.staff import staff_of

PARAM = "session-check"
# A browser comes back within a second; a mark older than this says nothing any more.
MAX_AGE_SECONDS = 120
_SALT = "keyadmin.sso.cookie-check"


def _signer(user) -> signing.TimestampSigner:
    staff = staff_of(user)
    who = f"{staff.issuer}\n{staff.subject}" if staff is not None else f"user {user.pk}"
    return signing.TimestampSigner(salt=f"{_SALT}:{who}")


def strip(request: HttpRequest) -> None:
    """Take the mark out of the request's query (GET and QUERY_STRING), kept aside for
    `came_back_without_cookie`."""
    request.cookie_check_mark = ""
    # The decoded names, not the raw query: `session%2Dcheck=` is the same parameter to the
    # QueryDict every view reads, and a link built from it would carry the mark on.
    if PARAM not in request.GET:
        return
    query = request.GET.copy()
    request.cookie_check_mark = query.pop(PARAM)[-1]
    request.META["QUERY_STRING"] = query.urlencode()
    request.GET = QueryDict(request.META["QUERY_STRING"], encoding=request.encoding)


def this_page(request: HttpRequest) -> str:
    """This request's path and query (the mark stripped): a path on this site, never a URL.

    As `request.get_full_path()` builds it, except that the path is what the client asked for,
    and `//evil.example/` in a Location or a link names another host: however such a path got
    this far, it goes out with one leading slash (a backslash is %-escaped, never `/\\`).
    """
    path = "/" + escape_uri_path(request.path).lstrip("/")
    query = request.GET.urlencode()
    return f"{path}?{query}" if query else path


def redirect_to_self(request: HttpRequest) -> HttpResponseRedirect:
    """Back to this page, marked: `came_back_without_cookie` is true if the client returns
    without the session cookie this answer sets."""
    query = request.GET.copy()
    query[PARAM] = _signer(request.user).sign("1")
    path = this_page(request).partition("?")[0]
    return HttpResponseRedirect(f"{path}?{query.urlencode()}")


def came_back_without_cookie(request: HttpRequest) -> bool:
    """True when this request, which has no session, carries a valid mark for its staff member:
    a session cookie was set for them at most MAX_AGE_SECONDS ago and did not come back."""
    mark = getattr(request, "cookie_check_mark", "")
    if not mark:
        return False
    try:
        _signer(request.user).unsign(mark, max_age=MAX_AGE_SECONDS)
    except signing.BadSignature:  # altered, another staff member's, or expired
        return False
    return True
