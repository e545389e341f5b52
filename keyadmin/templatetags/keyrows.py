"""`{% samerow vary... %}...{% endsamerow %}`: a key row's cells, rendered once per worker for
the same `vary` values, then reused.

A list renders up to 20 rows, and rendering one through the template engine costs about 1 ms of
CPU (translations, URLs, the note cell, its provenance), while the same key in the same state
renders the same HTML every time, but for the values that belong to this answer alone: the CSRF
token and the form binding (keyadmin/keys/guards.py). A block is rendered with markers in their
place (random per process: no key name or id can contain them), kept per worker, and each
answer gets the markers replaced by its own values: a block never carries another answer's
token or binding. Kept only when every `vary` value is plain (None, bool, int, str, date, or a
tuple of them), else rendered afresh (a refused form, an error). The language, time zone, URL
configuration and script prefix are part of the key too. A row with a form open (a rotate
nonce) is never put in a block (keys.html). Key names and notes are page content, not secrets;
the secret of a new key is never in a row.
"""

from __future__ import annotations

import secrets
import threading
from datetime import date, datetime

from django import template
from django.urls import get_script_prefix, get_urlconf
from django.utils import timezone, translation
from django.utils.html import conditional_escape
from django.utils.safestring import mark_safe

register = template.Library()

_MAX_ROWS = 2048  # about 3 KB each: a few MB per worker at most
_rows: dict[tuple, str] = {}
_lock = threading.Lock()


def _plain(value: object) -> bool:
    if isinstance(value, tuple):
        return all(_plain(item) for item in value)
    return value is None or isinstance(value, str | int | bool | date | datetime)


# Context values that belong to one answer alone: rendered as markers, then replaced by the
# answer's own (escaped) values.
_PER_ANSWER = ("csrf_token", "form_binding")


class SameRowNode(template.Node):
    def __init__(self, nodelist: template.NodeList, vary: list[template.base.FilterExpression]):
        self.nodelist = nodelist
        self.vary = vary
        self.marks = {name: f"{name}{secrets.token_hex(16)}" for name in _PER_ANSWER}

    def render(self, context: template.Context) -> str:
        values = tuple(expression.resolve(context) for expression in self.vary)
        own = {name: context.get(name) for name in _PER_ANSWER}
        if not all(_plain(value) for value in values) or not all(own.values()):
            return self.nodelist.render(context)
        key = (
            id(self),
            translation.get_language(),
            timezone.get_current_timezone_name(),
            get_urlconf(),
            get_script_prefix(),
            values,
        )
        html = _rows.get(key)
        if html is None:
            with context.push(**self.marks):
                html = self.nodelist.render(context)
            with _lock:
                if len(_rows) >= _MAX_ROWS:
                    _rows.clear()
                _rows[key] = html
        for name, mark in self.marks.items():
            html = html.replace(mark, conditional_escape(str(own[name])))
        # The template escaped the block; the markers are replaced by escaped values.
        return mark_safe(html)  # noqa: S308  # nosec B308 B703


@register.tag
def samerow(parser: template.base.Parser, token: template.base.Token) -> SameRowNode:
    bits = token.split_contents()[1:]
    if not bits:
        raise template.TemplateSyntaxError("samerow needs the values the row depends on")
    nodelist = parser.parse(("endsamerow",))
    parser.delete_first_token()
    return SameRowNode(nodelist, [parser.compile_filter(bit) for bit in bits])
