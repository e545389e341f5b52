"""The guards of the dashboard's views: a connected App Services user, failures answered in place.

Status contract: an htmx fragment is always HTTP 200, errors included, because htmx 2 does not
swap 4xx/5xx answers. A full page (no JavaScript) that shows a problem in place is 200 too (a
re-rendered form, App Services down); only a missing key (404) or a session that may not see
keys (403) get an error status, as do unknown paths (404) and wrong methods (405).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import wraps

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext as _
from django_htmx.http import HttpResponseClientRedirect
from django_htmx.middleware import HtmxDetails

from keyadmin import appservices, audit
from keyadmin.appservices.connection import Connection, forget, get_connection
from keyadmin.sso import bridge
from keyadmin.sso.session import is_deferred

logger = logging.getLogger("keyadmin.views")


class HtmxHttpRequest(HttpRequest):
    htmx: HtmxDetails
    connection: Connection


Failure = Callable[..., HttpResponse]

# Errors that are about the name typed into the create form, so the field itself says so.
NAME_ERRORS = (appservices.InvalidKeyName, appservices.KeyNameTaken, appservices.KeyLimitReached)


def upstream_errors(
    on_failure: Failure, audit_action: str | None = None
) -> Callable[[Failure], Failure]:
    """Answer an `AppServicesError` in place instead of a 500 page.

    A 401 ends the App Services session (back to its sign-in, `HX-Redirect` for htmx); any other
    error goes to `on_failure(request, error, *args, **kwargs)`, which renders it where the action
    was. Logged with the error class and status only: never a token, secret or key name. With
    `audit_action`, every failure is also appended to the audit trail.
    """

    def decorator(view: Failure) -> Failure:
        @wraps(view)
        def wrapper(request: HtmxHttpRequest, *args, **kwargs) -> HttpResponse:
            try:
                return view(request, *args, **kwargs)
            except appservices.AppServicesError as error:
                if audit_action:
                    audit.record_error(
                        request,
                        audit_action,
                        error,
                        key_id=kwargs.get("key_id"),
                        key_name=request.POST.get("name"),
                    )
                if isinstance(error, appservices.SessionEnded):
                    logger.warning("%s: App Services session ended (401)", view.__name__)
                    return session_ended(request)
                logger.warning(
                    "%s: %s (status %s, %s)",
                    view.__name__,
                    type(error).__name__,
                    error.status,
                    error.path or "before any request",
                )
                return on_failure(request, error, *args, **kwargs)

        return wrapper

    return decorator


def page_status(error: appservices.AppServicesError) -> int:
    """The HTTP status of a full page that reports `error` in place (htmx fragments stay 200).

    The page is still the page asked for, with the problem explained where the action was, so
    it is a 200; only a missing key (404) or a session that may not see keys (403) change that.
    """
    if isinstance(error, appservices.KeyNotFound | appservices.InvalidKeyId):
        return 404
    if isinstance(error, appservices.NotAllowed):
        return 403
    return 200


def answer_status(request: HtmxHttpRequest, status: int) -> int:
    return 200 if request.htmx else status


def signin_redirect(request: HttpRequest) -> HttpResponse:
    url = reverse("keyadmin:appservices-signin")
    if request.htmx:
        return HttpResponseClientRedirect(url)
    return redirect(url)


def session_ended(request: HttpRequest) -> HttpResponse:
    """After a 401 on a key call: the refresh token is dead, so sign in to App Services again."""
    forget(request)
    messages.warning(
        request, _("The App Services session has ended. Sign in to App Services again.")
    )
    return signin_redirect(request)


def appservices_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        connection = get_connection(request)
        if connection is None and bridge.enabled() and is_deferred(request):
            # Identified by a proxy assertion without a session: the bridge's App Services
            # sign-in needs one, so open it after this answer and come back here.
            request.session.modified = True
            return redirect(request.get_full_path())
        if connection is None:
            return signin_redirect(request)
        request.connection = connection
        return view(request, *args, **kwargs)

    return wrapper
