"""The dashboard's forms: connecting to an App Services user, creating a key, filtering the list."""

from __future__ import annotations

import re

from django import forms
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from keyadmin.appservices import (
    KEY_NAME_PATTERN,
    MAX_KEY_NAME_LENGTH,
    InvalidKeyName,
    check_key_name,
)
from keyadmin.appsfile import AppConfig
from keyadmin.forms import QUIET
from keyadmin.keys.notes import NOTE_FIELDS, secret_fields
from keyadmin.sso import actfor

# Browsers compile `pattern` with the `v` flag, where a bare "-" in a class is a syntax error.
KEY_NAME_HTML_PATTERN = KEY_NAME_PATTERN.replace("-]", r"\-]")


class EmailPasswordForm(forms.Form):
    provider = "local-userpass"

    email = forms.EmailField(
        label=_("Email"),
        widget=forms.EmailInput(attrs={"autocomplete": "off", **QUIET}),
    )
    password = forms.CharField(
        label=_("Password"),
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "off"}),
    )

    def credentials(self) -> dict[str, str]:
        return {"username": self.cleaned_data["email"], "password": self.cleaned_data["password"]}


class ApiKeySignInForm(forms.Form):
    provider = "api-key"

    key = forms.CharField(
        label=_("API key"),
        strip=True,
        widget=forms.PasswordInput(attrs={"autocomplete": "off"}),
    )

    def credentials(self) -> dict[str, str]:
        return {"key": self.cleaned_data["key"]}


class AnonymousSignInForm(forms.Form):
    provider = "anon-user"

    def credentials(self) -> dict[str, str]:
        return {}


SIGN_IN_FORMS: dict[str, type[forms.Form]] = {
    form.provider: form for form in (EmailPasswordForm, ApiKeySignInForm, AnonymousSignInForm)
}


NOT_FOR_SECRETS = _(
    "“%(field)s” looks like a secret (a long run of letters and digits, whole or in pieces, or a "
    "token). Notes are not for secrets: keep it in your password manager and write here only "
    "what it is for."
)
NOT_FOR_SECRETS_TOGETHER = _(
    "These fields together look like a secret, split between them: %(fields)s. Notes are not "
    "for secrets: keep it in your password manager and write here only what it is for."
)


def refuse_secrets(form: forms.Form, names: tuple[str, ...]) -> None:
    """A field error on each of `names` that holds something shaped like a secret or token, or
    on each of those that hold one between them. The message names the fields, never the text."""
    texts = {name: form.cleaned_data.get(name) for name in names}
    found, together = secret_fields(
        {name: text for name, text in texts.items() if isinstance(text, str)}
    )
    labels = {name: form.fields[name].label for name in found}
    for name in found:
        if together:
            quoted = ", ".join(f"“{labels[other]}”" for other in found)
            message = NOT_FOR_SECRETS_TOGETHER % {"fields": quoted}
        else:
            message = NOT_FOR_SECRETS % {"field": labels[name]}
        form.add_error(name, forms.ValidationError(message, code="secret"))


class NoteFields(forms.Form):
    """What a key's note says; the note form and the create form share it."""

    purpose = forms.CharField(
        label=_("Purpose"),
        required=False,
        max_length=200,
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    ticket = forms.CharField(
        label=_("Ticket"),
        required=False,
        max_length=100,
        widget=forms.TextInput(attrs={"autocomplete": "off", **QUIET}),
    )
    owner = forms.CharField(
        label=_("Owner or contact"),
        required=False,
        max_length=200,
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    review_by = forms.DateField(
        label=_("Review by"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
    )

    text_fields = ("purpose", "ticket", "owner")

    def clean(self):
        cleaned = super().clean()
        refuse_secrets(self, self.text_fields)
        return cleaned

    def note_values(self) -> dict:
        return {name: self.cleaned_data.get(name) for name in NOTE_FIELDS}


class NoteForm(NoteFields):
    """A key's note, edited in place on its row."""


class CreateKeyForm(NoteFields):
    name = forms.CharField(
        label=_("Key name"),
        max_length=MAX_KEY_NAME_LENGTH,
        error_messages={"required": _("Give the key a name.")},
        widget=forms.TextInput(
            attrs={
                "pattern": KEY_NAME_HTML_PATTERN,
                "autocomplete": "off",
                **QUIET,
            }
        ),
    )

    def clean_name(self) -> str:
        # The client's own check, so the form and App Services' rule cannot drift apart.
        try:
            return check_key_name(self.cleaned_data["name"])
        except InvalidKeyName as error:
            raise forms.ValidationError(error.message, code="invalid") from None

    def has_note(self) -> bool:
        return any(self.cleaned_data.get(name) for name in NOTE_FIELDS)


class RotateKeyForm(forms.Form):
    """The successor's name when a key is rotated: the same rule as a new key's name."""

    new_name = forms.CharField(
        label=_("Name of the new key"),
        max_length=MAX_KEY_NAME_LENGTH,
        error_messages={"required": _("Give the key a name.")},
    )

    def clean_new_name(self) -> str:
        try:
            return check_key_name(self.cleaned_data["new_name"])
        except InvalidKeyName as error:
            raise forms.ValidationError(error.message, code="invalid") from None


def posted_key_name(value: str | None) -> str:
    """The key name a row form sent back, or "" when it is not a name App Services would allow.

    Row forms post the name only so the re-rendered row can show it; it is never sent upstream.
    """
    if value and len(value) <= MAX_KEY_NAME_LENGTH and re.fullmatch(KEY_NAME_PATTERN, value):
        return value
    return ""


class KeyFilterForm(forms.Form):
    """The list filter. Without JavaScript the server applies it; with JS, our script does."""

    q = forms.CharField(
        label=_("Name contains"),
        required=False,
        max_length=MAX_KEY_NAME_LENGTH,
        widget=forms.TextInput(attrs={"type": "search", "autocomplete": "off", **QUIET}),
    )
    status = forms.ChoiceField(
        label=_("Status"),
        required=False,
        choices=[("", _("Any status")), ("enabled", _("Enabled")), ("disabled", _("Disabled"))],
    )
    review = forms.ChoiceField(
        label=_("Review"),
        required=False,
        choices=[
            ("", _("Any review date")),
            ("due", _("Review due or overdue")),
            ("overdue", _("Review overdue")),
        ],
    )

    def hidden_ids(self, keys) -> set[str]:
        if not self.is_bound or not self.is_valid():
            return set()
        text = self.cleaned_data["q"].casefold()
        status = self.cleaned_data["status"]
        review = self.cleaned_data["review"]
        return {
            key.id
            for key in keys
            if (text and text not in key.name.casefold())
            or (status == "enabled" and key.disabled)
            or (status == "disabled" and key.enabled)
            or (review == "overdue" and getattr(key, "review", "") != "overdue")
            or (review == "due" and not getattr(key, "review", ""))
        }


def _pattern_hint(pattern: str | None) -> str:
    # A hint, not an HTML `pattern`: an app's regular expression is Python's, which browsers
    # (compiling with the `v` flag) may read differently or refuse; the server checks it.
    if not pattern:
        return ""
    return format_html('{} <code translate="no">{}</code>', _("Pattern:"), pattern)


def _act_for_text(**kwargs) -> forms.CharField:
    # Checked by keyadmin.sso.actfor alone (see ActForForm); the attributes only hint the browser.
    attrs = {"required": True, "maxlength": actfor.MAX_VALUE_LENGTH, "autocomplete": "off", **QUIET}
    return forms.CharField(
        required=False, strip=False, widget=forms.TextInput(attrs=attrs), **kwargs
    )


class ActForForm(forms.Form):
    """Acting for a customer of `app`, labelled and hinted as the app says.

    Cleaning is keyadmin.sso.actfor's checks and nothing else (no `required` or `max_length`
    of Django's own), so the form, the audit trail's reason codes and the token cannot disagree;
    the HTML attributes only help the browser say so sooner.
    """

    customer_id = _act_for_text()
    ticket = _act_for_text(label=_("Reason or ticket reference"))
    minutes = forms.CharField(
        label=_("For how many minutes"),
        required=False,
        widget=forms.NumberInput(attrs={"required": True, "min": 1}),
    )

    def __init__(self, app: AppConfig, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.app = app
        fields = self.fields
        fields["customer_id"].label = actfor.customer_label(app)
        fields["customer_id"].help_text = _pattern_hint(app.customer_pattern)
        fields["ticket"].help_text = _pattern_hint(app.ticket_pattern)
        fields["minutes"].widget.attrs["max"] = app.max_act_for_minutes
        fields["minutes"].initial = app.default_act_for_minutes
        fields["minutes"].help_text = _("At most %(max)s minutes.") % {
            "max": app.max_act_for_minutes
        }

    def _checked(self, check, name: str):
        try:
            return check(self.app, self.cleaned_data.get(name))
        except actfor.ActForRefused as refused:
            raise forms.ValidationError(refused.message, code=refused.reason) from None

    def clean_customer_id(self) -> str:
        return self._checked(actfor.check_customer_id, "customer_id")

    def clean_ticket(self) -> str:
        return self._checked(actfor.check_ticket, "ticket")

    def clean_minutes(self) -> int:
        return self._checked(actfor.check_duration, "minutes")

    def refusal(self) -> actfor.ActForRefused:
        """The first refusal, in the fields' order, for the audit row and the summary."""
        for name in self.fields:
            for error in self.errors.as_data().get(name, []):
                return actfor.ActForRefused(error.code, error.messages[0])
        raise ValueError("the form has no error")

    def refuse(self, refused: actfor.ActForRefused) -> None:
        """Show a refusal made after cleaning at its field (a token too long: the ticket's)."""
        field = "ticket" if refused.reason == actfor.TOKEN_TOO_LONG else None
        self.add_error(field, forms.ValidationError(refused.message, code=refused.reason))
