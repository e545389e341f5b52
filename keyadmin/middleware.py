from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.cache import add_never_cache_headers
from django.utils.functional import empty

from keyadmin.logformat import clean_path, current_request_id
from keyadmin.sso.staff import staff_of


def no_store_when_signed_in(get_response: Callable[[HttpRequest], HttpResponse]):
    """Every response to a signed-in staff member is `no-store`.

    Pages here are views of someone's credentials; a shared or back/forward cache must never
    replay them. Static files are served by WhiteNoise before this runs.
    """

    def middleware(request: HttpRequest) -> HttpResponse:
        response = get_response(request)
        if getattr(request, "user", None) is not None and request.user.is_authenticated:
            add_never_cache_headers(response)
        return response

    return middleware


_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


def request_id(get_response: Callable[[HttpRequest], HttpResponse]):
    """Give every request an id (`request.request_id`), echoed as `X-Request-ID`.

    The id ties an audit event to log lines. A client-sent X-Request-ID is ignored unless
    KEYADMIN_TRUST_REQUEST_ID_HEADER says a proxy in front sets it, and even then only a short
    token-safe value is taken, so nobody can write arbitrary text into the trail.
    """

    def middleware(request: HttpRequest) -> HttpResponse:
        incoming = request.META.get("HTTP_X_REQUEST_ID", "")
        if settings.KEYADMIN_TRUST_REQUEST_ID_HEADER and _REQUEST_ID.fullmatch(incoming):
            request.request_id = incoming
        else:
            request.request_id = uuid.uuid4().hex
        response = get_response(request)
        response["X-Request-ID"] = request.request_id
        return response

    return middleware


access_logger = logging.getLogger("keyadmin.access")


def _staff_subject(request: HttpRequest) -> str:
    user = getattr(request, "user", None)
    # Only a user that the request already loaded: the log line never reads the session itself.
    if user is None or getattr(user, "_wrapped", None) is empty:
        return ""
    try:
        if not user.is_authenticated:
            return ""
        staff = staff_of(user)
        return (staff.subject if staff is not None else user.get_username())[:255]
    except Exception:  # the log line must never turn an answer into an error
        return ""


def access_log(get_response: Callable[[HttpRequest], HttpResponse]):
    """One log line per request (logger `keyadmin.access`, level INFO). Place after `request_id`.

    Method, path, status, duration in ms, request id and the staff subject of a signed-in staff
    member. Never the query string, headers, cookies or bodies: any of them could carry a token
    or a key secret; the path is cut short and anything token-shaped in it is redacted. While the
    request is served its id is also put on every other log line (JSON format).
    """

    def middleware(request: HttpRequest) -> HttpResponse:
        started = time.monotonic()
        request_id = str(getattr(request, "request_id", ""))
        token = current_request_id.set(request_id)
        status = 500
        try:
            response = get_response(request)
            status = response.status_code
            return response
        finally:
            duration_ms = round((time.monotonic() - started) * 1000, 1)
            method = clean_path(request.method or "-", limit=16)
            path = clean_path(request.path)
            staff = _staff_subject(request)
            access_logger.info(
                "%s %s %s %.1fms request_id=%s staff=%s",
                method,
                path,
                status,
                duration_ms,
                request_id,
                staff or "-",
                extra={
                    "method": method,
                    "path": path,
                    "status": status,
                    "duration_ms": duration_ms,
                    "request_id": request_id,
                    "staff": staff,
                },
            )
            current_request_id.reset(token)

    return middleware
