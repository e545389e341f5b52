"""The audit trail for auditors: filter, page through, export as CSV."""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator

from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from keyadmin import audit
from keyadmin.appservices.apps import all_apps
from keyadmin.audit.forms import AuditFilterForm
from keyadmin.models import AuditEvent
from keyadmin.sso.access import role_required
from keyadmin.sso.roles import AUDITOR, roles_of_on_app

PAGE_SIZE = 50
CSV_COLUMNS = (
    "at",
    "action",
    "outcome",
    "status",
    "staff_name",
    "staff_subject",
    "staff_issuer",
    "app_id",
    "appservices_user_id",
    "acting_for",
    "ticket",
    "acting_until",
    "key_id",
    "key_name",
    "request_id",
    "client_address",
    "detail",
    "batch_id",
    "changes",
)
# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection). A cell
# starts at the beginning of a field, and also after every `;` or `,` or line break, because a
# spreadsheet opening the file in another locale (Spanish and German ones split on `;`) or a
# naive importer may split there, quotes or not.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_FORMULA_AT_A_SPLIT = re.compile(r"(^|[;,\r\n])( *)(?=[=+\-@\t\r])")


def _visible(request: HttpRequest) -> QuerySet:
    """The rows this auditor may read: none of an app whose `auditor_groups` leave them out
    (its customers, tickets and users are that app's auditors' business only)."""
    withheld = [
        app.app_id for app in all_apps() if AUDITOR not in roles_of_on_app(request.user, app)
    ]
    return AuditEvent.objects.exclude(app_id__in=withheld)


def _filtered(request: HttpRequest) -> tuple[AuditFilterForm, QuerySet]:
    form = AuditFilterForm(request.GET or None)
    return form, form.filter(_visible(request))


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
    """`value` with a `'` before every formula start at a point a spreadsheet may split on."""
    text = "" if value is None else str(value)
    return _FORMULA_AT_A_SPLIT.sub(r"\1\2'", text)


class _Echo:
    def write(self, value: str) -> str:
        return value


def _rows(events: QuerySet) -> Iterator[str]:
    writer = csv.writer(_Echo(), quoting=csv.QUOTE_ALL)
    yield writer.writerow(CSV_COLUMNS)
    for event in events.iterator(chunk_size=500):
        row = []
        for column in CSV_COLUMNS:
            value = getattr(event, column)
            if column in ("at", "acting_until"):
                value = value.isoformat() if value else ""
            elif column == "changes":
                value = json.dumps(value, ensure_ascii=False) if value else ""
            row.append(csv_cell(value))
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
