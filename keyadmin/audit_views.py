"""The audit trail for auditors: filter, page through, export as CSV."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from datetime import datetime, time, timedelta

from django import forms
from django.core.paginator import Paginator
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET

from keyadmin import audit
from keyadmin.models import AuditEvent
from keyadmin.roles import AUDITOR, role_required

PAGE_SIZE = 50
QUIET = {"spellcheck": "false", "autocapitalize": "off", "autocorrect": "off"}
CSV_COLUMNS = (
    "at",
    "action",
    "outcome",
    "status",
    "staff_name",
    "staff_subject",
    "staff_issuer",
    "appservices_user_id",
    "key_id",
    "key_name",
    "request_id",
    "client_address",
    "detail",
)
# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


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
        choices=[("", _("Any"))] + [(action, action) for action in AuditEvent.ACTIONS],
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
    since = forms.DateField(
        label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    until = forms.DateField(
        label=_("To"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )

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
        if data["key"]:
            events = events.filter(Q(key_id=data["key"]) | Q(key_name__icontains=data["key"]))
        zone = timezone.get_current_timezone()
        if data["since"]:
            events = events.filter(at__gte=datetime.combine(data["since"], time.min, zone))
        if data["until"]:
            # "To" is inclusive: the whole of that day.
            end = datetime.combine(data["until"] + timedelta(days=1), time.min, zone)
            events = events.filter(at__lt=end)
        return events


def _filtered(request: HttpRequest) -> tuple[AuditFilterForm, QuerySet]:
    form = AuditFilterForm(request.GET or None)
    return form, form.filter(AuditEvent.objects.all())


@require_GET
@role_required(AUDITOR)
def trail(request: HttpRequest) -> HttpResponse:
    form, events = _filtered(request)
    page = Paginator(events, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {"form": form, "page": page, "query": query.urlencode()}
    return render(request, "keyadmin/audit.html", context)


def csv_cell(value: object) -> str:
    text = "" if value is None else str(value)
    if text.startswith(FORMULA_STARTS):
        return "'" + text
    return text


class _Echo:
    def write(self, value: str) -> str:
        return value


def _rows(events: QuerySet) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_COLUMNS)
    for event in events.iterator(chunk_size=500):
        row = []
        for column in CSV_COLUMNS:
            value = getattr(event, column)
            row.append(csv_cell(value.isoformat() if column == "at" else value))
        yield writer.writerow(row)


@require_GET
@role_required(AUDITOR)
def export_csv(request: HttpRequest) -> HttpResponse:
    _form, events = _filtered(request)
    audit.record(request, "audit-export", audit.OK, detail=request.GET.urlencode()[:200])
    response = StreamingHttpResponse(_rows(events), content_type="text/csv; charset=utf-8")
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    response["Content-Disposition"] = f'attachment; filename="keyadmin-audit-{stamp}.csv"'
    return response
