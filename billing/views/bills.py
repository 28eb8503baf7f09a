"""The bill a customer reads: invoice list, invoice page, calls, downloads."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from accounts.decorators import bills_required
from billing import csv_export
from billing.models import Band, CallStatus, Direction
from billing.selectors import bills as sel

INVOICES_PER_PAGE = 24


@require_GET
@bills_required
def invoice_list(request):
    company = request.user.company
    paginator = Paginator(sel.invoices_for(company=company), INVOICES_PER_PAGE)
    page = paginator.get_page(request.GET.get("page"))
    return render(
        request,
        "billing/invoice_list.html",
        {"page_obj": page, "invoices": page.object_list},
    )


@require_GET
@bills_required
def invoice_detail(request, pk: int):
    company = request.user.company
    invoice = sel.invoice_for(company=company, pk=pk)
    view = sel.invoice_view(company=company, invoice=invoice)
    return render(
        request,
        "billing/invoice_detail.html",
        {"invoice": invoice, "bill": view},
    )


@require_GET
@bills_required
def invoice_pdf(request, pk: int):
    invoice = sel.invoice_for(company=request.user.company, pk=pk)
    from billing.pdf import invoice_pdf as render_pdf

    response = HttpResponse(render_pdf(invoice), content_type="application/pdf")
    name = invoice.number or f"invoice-{invoice.period:%Y-%m}"
    response["Content-Disposition"] = f'attachment; filename="{name}.pdf"'
    return response


def _file_stem(invoice) -> str:
    return invoice.number or f"invoice-{invoice.period:%Y-%m}"


@require_GET
@bills_required
def invoice_lines_csv(request, pk: int):
    company = request.user.company
    invoice = sel.invoice_for(company=company, pk=pk)
    lines = sel.invoice_lines_for(company=company, invoice=invoice)
    header = [
        _("Invoice"),
        _("Billing month"),
        _("400 number"),
        _("Kind"),
        _("Description"),
        _("Usage month"),
        _("Quantity"),
        _("Unit"),
        _("Unit price"),
        _("Billable minutes"),
        _("Minutes from the pool"),
        _("Charged minutes"),
        _("Tax category"),
        _("Tax rate"),
        _("Amount"),
    ]
    rows = (
        [
            invoice.number or "",
            f"{invoice.period:%Y-%m}",
            line.number_display,
            line.get_kind_display(),
            line.description,
            f"{line.usage_period:%Y-%m}" if line.usage_period else "",
            line.quantity,
            line.unit,
            line.unit_price,
            line.billable_minutes,
            line.pool_minutes,
            line.charged_minutes,
            line.tax_category,
            line.tax_rate,
            line.amount,
        ]
        for line in lines
    )
    return csv_export.csv_response(f"{_file_stem(invoice)}-lines.csv", header, rows)


def _call_header() -> list[str]:
    return [
        _("Call id"),
        _("400 number"),
        _("Start"),
        _("Caller"),
        _("Caller area"),
        _("Duration (s)"),
        _("Direction"),
        _("Result"),
        _("Band"),
        _("Billable minutes"),
        _("Minutes from the pool"),
        _("Charged minutes"),
        _("Rate"),
        _("Amount"),
    ]


def _localised_rows(rows):
    """Local (Asia/Shanghai) times and the labels of the choices, not codes."""
    fields = sel.CALL_EXPORT_FIELDS
    start = fields.index("start_time")
    labels = {
        fields.index("direction"): dict(Direction.choices),
        fields.index("status"): dict(CallStatus.choices),
        fields.index("band"): dict(Band.choices),
    }
    for row in rows:
        row[start] = timezone.localtime(row[start]).replace(tzinfo=None)
        for index, choices in labels.items():
            row[index] = str(choices.get(row[index], row[index]))
        yield row


@require_GET
@bills_required
def invoice_calls_csv(request, pk: int):
    company = request.user.company
    invoice = sel.invoice_for(company=company, pk=pk)
    qs = sel.invoice_calls(company=company, invoice=invoice)
    return csv_export.csv_streaming_response(
        f"{_file_stem(invoice)}-calls.csv",
        _call_header(),
        _localised_rows(sel.iter_call_rows(qs)),
    )


@require_GET
@bills_required
def line_calls(request, pk: int):
    company = request.user.company
    line = sel.line_for(company=company, pk=pk)
    if not sel.is_usage_line(line):
        raise Http404
    qs = sel.line_calls(company=company, line=line)
    page = sel.call_page(
        qs, after=request.GET.get("after"), before=request.GET.get("before")
    )
    check = sel.SumCheck(line=line, sums=sel.line_call_sums(company=company, line=line))
    return render(
        request,
        "billing/line_calls.html",
        {"line": line, "invoice": line.invoice, "page": page, "check": check},
    )


@require_GET
@bills_required
def line_calls_csv(request, pk: int):
    company = request.user.company
    line = sel.line_for(company=company, pk=pk)
    if not sel.is_usage_line(line):
        raise Http404
    qs = sel.line_calls(company=company, line=line)
    return csv_export.csv_streaming_response(
        f"{_file_stem(line.invoice)}-line-{line.position}-calls.csv",
        _call_header(),
        _localised_rows(sel.iter_call_rows(qs)),
    )
