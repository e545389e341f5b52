"""Template filters for the note forms rendered on every key row."""

from __future__ import annotations

from django import template

register = template.Library()


@register.filter
def field(form, name: str):
    """`form[name]` (a bound field), or None without a form: rows with no refused note."""
    return form[name] if form else None
