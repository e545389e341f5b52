"""Where a request's time went, as a `Server-Timing` header on every response.

    Server-Timing: app;dur=4.1, db;dur=0.6;desc="3 queries",
                   upstream;dur=52.0;desc="1 request", render;dur=1.1

`app` is the whole request as the outermost middleware sees it, `db` the database queries
(connection.execute_wrapper: counted without DEBUG), `upstream` the App Services exchanges
(keyadmin.appservices.client.UPSTREAM_OBSERVERS, one call per attempt) and `render` the outermost
template renders (a form or an include rendered inside a page is part of the page's figure, never
counted twice). No CPU figure: the thread's CPU clock (time.thread_time) cost 62 us a reading inside
a gunicorn worker, two per request, 0.12 ms; `make bench` reads the workers' CPU from /proc instead.
Only names, numbers and fixed words: never a path, id, name, token or secret, so the header is safe
on every answer, errors included.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Callable
from dataclasses import dataclass

from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.template.backends.django import DjangoTemplates

from keyadmin.appservices.client import UPSTREAM_OBSERVERS

HEADER = "Server-Timing"


@dataclass
class RequestTiming:
    db_queries: int = 0
    db_seconds: float = 0.0
    upstream_requests: int = 0
    upstream_seconds: float = 0.0
    render_seconds: float = 0.0
    render_depth: int = 0

    def header(self, app_seconds: float) -> str:
        queries = "query" if self.db_queries == 1 else "queries"
        requests = "request" if self.upstream_requests == 1 else "requests"
        return ", ".join(
            (
                f"app;dur={app_seconds * 1000:.2f}",
                f'db;dur={self.db_seconds * 1000:.2f};desc="{self.db_queries} {queries}"',
                f"upstream;dur={self.upstream_seconds * 1000:.2f}"
                f';desc="{self.upstream_requests} {requests}"',
                f"render;dur={self.render_seconds * 1000:.2f}",
            )
        )


# gunicorn's gthread workers serve one request per thread: each thread has its own context.
_current: contextvars.ContextVar[RequestTiming | None] = contextvars.ContextVar(
    "keyadmin_request_timing", default=None
)


def _count_upstream(method: str, route: str, outcome: str, seconds: float) -> None:
    timing = _current.get()
    if timing is not None:
        timing.upstream_requests += 1
        timing.upstream_seconds += seconds


UPSTREAM_OBSERVERS.append(_count_upstream)


def _timed_query(execute, sql, params, many, context):
    timing = _current.get()
    started = time.perf_counter()
    try:
        return execute(sql, params, many, context)
    finally:
        if timing is not None:
            timing.db_queries += 1
            timing.db_seconds += time.perf_counter() - started


def server_timing(get_response: Callable[[HttpRequest], HttpResponse]):
    """Middleware, first in MIDDLEWARE so that `app` covers every other one."""

    def middleware(request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        timing = RequestTiming()
        token = _current.set(timing)
        try:
            with connection.execute_wrapper(_timed_query):
                response = get_response(request)
        finally:
            _current.reset(token)
        response[HEADER] = timing.header(time.perf_counter() - started)
        return response

    return middleware


class _TimedTemplate:
    def __init__(self, template) -> None:
        self.template = template

    def __getattr__(self, name: str):
        return getattr(self.template, name)

    def render(self, context=None, request=None):
        timing = _current.get()
        if timing is None:
            return self.template.render(context, request)
        timing.render_depth += 1
        started = time.perf_counter()
        try:
            return self.template.render(context, request)
        finally:
            timing.render_depth -= 1
            if timing.render_depth == 0:
                timing.render_seconds += time.perf_counter() - started


class TimedDjangoTemplates(DjangoTemplates):
    """Django's template backend, with each template's render counted as `render`.

    The backend, not a signal: Django sends `template_rendered` only under the test runner, and
    every render (views, error pages, forms through FORM_RENDERER) goes through a backend.
    """

    def from_string(self, template_code):
        return _TimedTemplate(super().from_string(template_code))

    def get_template(self, template_name):
        return _TimedTemplate(super().get_template(template_name))
