from __future__ import annotations

import re
import uuid
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.cache import add_never_cache_headers


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
