from __future__ import annotations

from collections.abc import Callable

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
