"""The audit trail's filter form."""

from __future__ import annotations

from datetime import datetime, time, timedelta

from django import forms
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from keyadmin.appservices.apps import all_apps
from keyadmin.forms import QUIET
from keyadmin.models import AuditEvent


class AuditFilterForm(forms.Form):
    staff = forms.CharField(
        label=_("Staff"),
        required=False,
        max_length=200,
        widget=forms.TextInput(attrs={"autocomplete": "off", **QUIET}),
        help_text=_("Name or subject, or part of it."),
    )
    action = forms.ChoiceField(
        label=_("Action"),
        required=False,
        choices=[("", _("Any")), *AuditEvent.Action.choices],
    )
    outcome = forms.ChoiceField(
        label=_("Outcome"),
        required=False,
        choices=[("", _("Any")), *AuditEvent.Outcome.choices],
    )
    key = forms.CharField(
        label=_("Key"),
        required=False,
        max_length=64,
        widget=forms.TextInput(attrs={"autocomplete": "off", **QUIET}),
        help_text=_("Key id, or part of the key name."),
    )
    app = forms.ChoiceField(label=_("App"), required=False)
    customer = forms.CharField(
        label=_("Customer acted for"),
        required=False,
        max_length=255,
        widget=forms.TextInput(attrs={"autocomplete": "off", **QUIET}),
        help_text=_("The exact customer id."),
    )
    ticket = forms.CharField(
        label=_("Ticket"),
        required=False,
        max_length=255,
        widget=forms.TextInput(attrs={"autocomplete": "off", **QUIET}),
        help_text=_("The ticket reference, or part of it."),
    )
    batch = forms.CharField(
        label=_("Batch"),
        required=False,
        max_length=36,
        widget=forms.TextInput(attrs={"autocomplete": "off", **QUIET}),
        help_text=_("The exact batch id of a lock-down, its undo or a bulk action."),
    )
    since = forms.DateField(
        label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    until = forms.DateField(
        label=_("To"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # The configured apps (rows of an app since removed stay in the unfiltered trail).
        known = {app.app_id: f"{app.name} ({app.app_id})" for app in all_apps()}
        self.fields["app"].choices = [("", _("Any")), *known.items()]

    def filter(self, events: QuerySet) -> QuerySet:
        if not self.is_bound or not self.is_valid():
            return events
        data = self.cleaned_data
        if data["staff"]:
            events = events.filter(
                Q(staff_name__icontains=data["staff"]) | Q(staff_subject__icontains=data["staff"])
            )
        if data["action"]:
            events = events.filter(action=data["action"])
        if data["outcome"]:
            events = events.filter(outcome=data["outcome"])
        if data["app"]:
            events = events.filter(app_id=data["app"])
        if data["customer"]:
            events = events.filter(acting_for=data["customer"].strip())
        if data["ticket"]:
            events = events.filter(ticket__icontains=data["ticket"].strip())
        if data["key"]:
            events = events.filter(Q(key_id=data["key"]) | Q(key_name__icontains=data["key"]))
        if data["batch"]:
            events = events.filter(batch_id=data["batch"].strip())
        zone = timezone.get_current_timezone()
        if data["since"]:
            events = events.filter(at__gte=datetime.combine(data["since"], time.min, zone))
        if data["until"]:
            # "To" is inclusive: the whole of that day.
            end = datetime.combine(data["until"] + timedelta(days=1), time.min, zone)
            events = events.filter(at__lt=end)
        return events
