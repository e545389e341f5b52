"""What every keyadmin form shares: quiet text inputs and one way to render a field."""

from __future__ import annotations

from django.forms.renderers import TemplatesSetting

# Text inputs never go to spell-check services: Chrome's Enhanced Spellcheck and Edge's Editor
# send field contents to the vendor ("spell-jacking"), and a customer email or key name is not
# theirs to read.
QUIET = {"spellcheck": "false", "autocapitalize": "off", "autocorrect": "off"}


class FormRenderer(TemplatesSetting):
    """Forms render through the project's templates; `{{ form.x.as_field_group }}` draws the
    label, hint, errors and widget of keyadmin/field.html, with aria-describedby wired."""

    field_template_name = "keyadmin/field.html"
