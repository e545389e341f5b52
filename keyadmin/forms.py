"""What every keyadmin form shares: quiet text inputs and one way to render a field."""

from __future__ import annotations

import threading

from django.forms.renderers import TemplatesSetting
from django.utils import translation
from django.utils.functional import Promise

# Text inputs never go to spell-check services: Chrome's Enhanced Spellcheck and Edge's Editor
# send field contents to the vendor ("spell-jacking"), and a customer email or key name is not
# theirs to read.
QUIET = {"spellcheck": "false", "autocapitalize": "off", "autocorrect": "off"}


class _NotPlain(Exception):
    pass


def _plain(value):
    """`value` as a hashable tree of plain data (lazy translations as text), or _NotPlain."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    if isinstance(value, Promise):
        return str(value)
    if isinstance(value, dict):
        return tuple(sorted((str(name), _plain(item)) for name, item in value.items()))
    if isinstance(value, list | tuple):
        return tuple(_plain(item) for item in value)
    raise _NotPlain()


def _empty(value) -> bool:
    return value in (None, "") or (isinstance(value, list) and all(v in (None, "") for v in value))


_MAX_WIDGETS = 256
_widgets: dict[tuple, str] = {}
_widgets_lock = threading.Lock()


class FormRenderer(TemplatesSetting):
    """Forms render through the project's templates; `{{ form.x.as_field_group }}` draws the
    label, hint, errors and widget of keyadmin/field.html, with aria-describedby wired.

    An empty widget (a fresh filter or create form) renders the same HTML every time, and the
    template engine takes about 0.4 ms for one: it is rendered once per worker and language.
    Only when its context is plain data and its value is empty, so nothing anyone typed is kept.
    """

    field_template_name = "keyadmin/field.html"

    def render(self, template_name, context, request=None):
        widget = context.get("widget") if request is None and len(context) == 1 else None
        if not isinstance(widget, dict) or not _empty(widget.get("value")):
            return super().render(template_name, context, request)
        try:
            key = (template_name, translation.get_language(), _plain(context))
        except _NotPlain:
            return super().render(template_name, context, request)
        html = _widgets.get(key)
        if html is None:
            html = super().render(template_name, context, request)
            with _widgets_lock:
                if len(_widgets) >= _MAX_WIDGETS:
                    _widgets.clear()
                _widgets[key] = html
        return html
