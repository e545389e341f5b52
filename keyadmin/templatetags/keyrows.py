"""`{% samerow vary... %}...{% endsamerow %}`: the parts of a key row that only the key decides,
rendered once per worker, then reused.

A list renders up to 20 rows, and rendering one through the template engine costs about 0.7 ms
of CPU (translations, URLs, two forms), while the same key in the same state renders the same
HTML every time, but for the two values that belong to this answer alone: the CSRF token and
the form binding (keyadmin/keys/guards.py). The block is rendered with markers in their place,
kept per worker, and each answer gets the markers replaced by its own token and binding; a block
never carries another answer's. Kept only when every `vary` value is plain (None, bool, int,
str, date), else rendered afresh. The language, time zone, URL configuration and script prefix are
part of the key too. What depends on more (the note cell, the rotate form with its nonce, an
error) stays outside the blocks. Key names are page content, not secrets; the secret of a new
key is never inside a row.
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

# Random per process: no key name or id can contain them by chance or design.
_CSRF_MARK = f"csrf{secrets.token_hex(16)}"
_BINDING_MARK = f"binding{secrets.token_hex(16)}"
_MAX_ROWS = 2048  # about 3 KB each: a few MB per worker at most
_rows: dict[tuple, str] = {}
_lock = threading.Lock()


def _plain(value: object) -> bool:
    return value is None or isinstance(value, str | int | bool | date | datetime)


class SameRowNode(template.Node):
    def __init__(self, nodelist: template.NodeList, vary: list[template.base.FilterExpression]):
        self.nodelist = nodelist
        self.vary = vary

    def render(self, context: template.Context) -> str:
        values = tuple(expression.resolve(context) for expression in self.vary)
        csrf_token = context.get("csrf_token")
        binding = context.get("form_binding")
        if not all(_plain(value) for value in values) or not csrf_token or not binding:
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
            with context.push(csrf_token=_CSRF_MARK, form_binding=_BINDING_MARK):
                html = self.nodelist.render(context)
            with _lock:
                if len(_rows) >= _MAX_ROWS:
                    _rows.clear()
                _rows[key] = html
        # The template escaped the row; the markers are replaced by escaped values.
        return mark_safe(  # noqa: S308  # nosec B308 B703
            html.replace(_CSRF_MARK, conditional_escape(str(csrf_token))).replace(
                _BINDING_MARK, conditional_escape(str(binding))
            )
        )


@register.tag
def samerow(parser: template.base.Parser, token: template.base.Token) -> SameRowNode:
    bits = token.split_contents()[1:]
    if not bits:
        raise template.TemplateSyntaxError("samerow needs the values the row depends on")
    nodelist = parser.parse(("endsamerow",))
    parser.delete_first_token()
    return SameRowNode(nodelist, [parser.compile_filter(bit) for bit in bits])
