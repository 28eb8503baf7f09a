"""Reads behind the bill pages, the downloads and the company API.

Every function takes the company and filters on it: an id of another
company's invoice, line or call is simply not found (404), never shown.

Customers see issued, paid and void invoices only. A draft may still be
regenerated (new calls, corrections by agent staff), so showing it would put
figures in front of the customer that can change without notice; the running
month is shown on the month-to-date page instead, clearly as an estimate.

Query counts do not grow with the size of the bill: the invoice page reads
the invoice, its lines, credit notes and payments in a fixed number of
queries; the calls of a line are read one page at a time by keyset
pagination on the (subscription, period, start_time, call_id) index, and
their sums are one aggregate query.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal

from django.core.cache import cache
from django.db.models import (
    Count,
    DecimalField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce
from django.http import Http404
from django.utils import timezone

from accounts.models import Company
from billing.models import Band, CallRecord, CallStatus, Invoice, InvoiceLine
from billing.money import money_sum, to_money, vat_split

CUSTOMER_STATUSES = (Invoice.Status.ISSUED, Invoice.Status.PAID, Invoice.Status.VOID)

USAGE_KINDS = (
    InvoiceLine.Kind.INBOUND_PEAK,
    InvoiceLine.Kind.INBOUND_OFFPEAK,
    InvoiceLine.Kind.OUTBOUND,
)
FEE_KINDS = (InvoiceLine.Kind.PLAN_FEE, InvoiceLine.Kind.TERM_PRICE)

ZERO = Decimal("0.00")
_MONEY_OUT = DecimalField(max_digits=14, decimal_places=2)


# --- masking -----------------------------------------------------------------


def mask_phone(value: str) -> str:
    """A caller number with its middle digits hidden: ``138****8000``.

    The country code +86/0086 is dropped; the first three and last four
    digits stay (enough to recognise a caller, not enough to dial). Short
    numbers keep only their last two digits.
    """
    digits = "".join(ch for ch in str(value or "") if ch.isdigit())
    if digits.startswith("0086"):
        digits = digits[4:]
    elif digits.startswith("86") and len(digits) == 13:
        digits = digits[2:]
    if not digits:
        return ""
    if len(digits) >= 8:
        return digits[:3] + "*" * (len(digits) - 7) + digits[-4:]
    if len(digits) > 2:
        return "*" * (len(digits) - 2) + digits[-2:]
    return "*" * len(digits)


# --- invoices ----------------------------------------------------------------


def _sum_subquery(model_rel: str) -> Subquery:
    from billing.models import CreditNote, Payment

    model = {"payments": Payment, "credit_notes": CreditNote}[model_rel]
    return Subquery(
        model.objects.filter(invoice=OuterRef("pk"))
        .order_by()
        .values("invoice")
        .annotate(s=Sum("amount"))
        .values("s")[:1],
        output_field=_MONEY_OUT,
    )


def invoices_for(*, company: Company) -> QuerySet[Invoice]:
    """The company's invoices a customer may see, newest month first.

    Annotated with ``paid_amount`` and ``credited_amount`` (sums in SQL).
    """
    return (
        Invoice.objects.filter(company=company, status__in=CUSTOMER_STATUSES)
        .annotate(
            paid_amount=Coalesce(
                _sum_subquery("payments"), Value(ZERO), output_field=_MONEY_OUT
            ),
            credited_amount=Coalesce(
                _sum_subquery("credit_notes"), Value(ZERO), output_field=_MONEY_OUT
            ),
        )
        .order_by("-period", "-pk")
    )


def invoice_for(*, company: Company, pk: int) -> Invoice:
    """One visible invoice of the company, or 404."""
    try:
        return invoices_for(company=company).select_related("company").get(pk=pk)
    except (Invoice.DoesNotExist, ValueError, TypeError):
        raise Http404 from None


def invoice_lines_for(*, company: Company, invoice: Invoice) -> QuerySet[InvoiceLine]:
    return InvoiceLine.objects.filter(
        invoice=invoice, invoice__company=company
    ).order_by("position")


def line_for(*, company: Company, pk: int) -> InvoiceLine:
    """One line of a visible invoice of the company, or 404."""
    try:
        return InvoiceLine.objects.select_related("invoice").get(
            pk=pk,
            invoice__company=company,
            invoice__status__in=CUSTOMER_STATUSES,
        )
    except (InvoiceLine.DoesNotExist, ValueError, TypeError):
        raise Http404 from None


# --- the invoice page --------------------------------------------------------


@dataclass
class NumberGroup:
    """The lines of one 400 number on an invoice, with their subtotal."""

    number_display: str
    lines: list[InvoiceLine] = field(default_factory=list)

    @property
    def subtotal(self) -> Decimal:
        return money_sum(line.amount for line in self.lines)


@dataclass(frozen=True)
class VatRow:
    category: str
    rate: Decimal
    net: Decimal
    tax: Decimal
    gross: Decimal


@dataclass
class InvoiceView:
    invoice: Invoice
    groups: list[NumberGroup]
    vat: list[VatRow]
    total: Decimal
    credit_notes: list
    payments: list
    credited: Decimal
    paid: Decimal

    @property
    def lines(self) -> list[InvoiceLine]:
        return [line for g in self.groups for line in g.lines]

    @property
    def outstanding(self) -> Decimal:
        if self.invoice.status == Invoice.Status.VOID:
            return ZERO
        return max(ZERO, self.total - self.credited - self.paid)

    @property
    def vat_net(self) -> Decimal:
        return money_sum(r.net for r in self.vat)

    @property
    def vat_tax(self) -> Decimal:
        return money_sum(r.tax for r in self.vat)


def group_lines(lines) -> list[NumberGroup]:
    """Lines grouped by 400 number, in the order the numbers first appear."""
    groups: dict[str, NumberGroup] = {}
    for line in lines:
        group = groups.get(line.number_display)
        if group is None:
            group = groups[line.number_display] = NumberGroup(line.number_display)
        group.lines.append(line)
    return list(groups.values())


def vat_table(lines) -> list[VatRow]:
    """Per tax category and rate: gross = Σ amounts, tax and net (§1)."""
    acc: dict[tuple[str, Decimal], Decimal] = {}
    for line in lines:
        key = (line.tax_category, line.tax_rate)
        acc[key] = acc.get(key, ZERO) + line.amount
    rows = []
    for (category, rate), gross in sorted(acc.items(), key=lambda kv: -kv[0][1]):
        net, tax = vat_split(gross, rate)
        rows.append(VatRow(category, rate, net, tax, to_money(gross)))
    return rows


def invoice_view(*, company: Company, invoice: Invoice) -> InvoiceView:
    """Everything the invoice page shows, in four queries whatever its size."""
    lines = list(invoice_lines_for(company=company, invoice=invoice))
    credit_notes = list(invoice.credit_notes.order_by("created_at"))
    payments = list(invoice.payments.order_by("paid_on", "pk"))
    return InvoiceView(
        invoice=invoice,
        groups=group_lines(lines),
        vat=vat_table(lines),
        total=money_sum(line.amount for line in lines),
        credit_notes=credit_notes,
        payments=payments,
        credited=money_sum(c.amount for c in credit_notes),
        paid=money_sum(p.amount for p in payments),
    )


# --- the calls of a usage line -----------------------------------------------


def is_usage_line(line: InvoiceLine) -> bool:
    return line.kind in USAGE_KINDS


def line_calls_q(line: InvoiceLine) -> Q:
    """The calls an invoice usage line bills.

    Same subscription, usage month, direction and band; on an issued invoice
    the calls it froze (``invoice`` set), on a draft the calls not yet billed.
    Only answered calls: a missed call has no minutes and no amount.
    """
    invoice = line.invoice
    q = Q(
        subscription_id=line.subscription_id,
        period=line.usage_period or invoice.period,
        status=CallStatus.ANSWERED,
    )
    if line.kind == InvoiceLine.Kind.OUTBOUND:
        q &= Q(direction="outbound")
    elif line.kind == InvoiceLine.Kind.INBOUND_PEAK:
        q &= Q(direction="inbound", band="peak")
    elif line.kind == InvoiceLine.Kind.INBOUND_OFFPEAK:
        q &= Q(direction="inbound", band="offpeak")
    else:
        return Q(pk__in=[])
    if invoice.status == Invoice.Status.DRAFT:
        q &= Q(invoice__isnull=True) | Q(invoice=invoice)
    else:
        q &= Q(invoice=invoice)
    return q


def line_calls(*, company: Company, line: InvoiceLine) -> QuerySet[CallRecord]:
    if line.invoice.company_id != company.pk:
        raise Http404
    return CallRecord.objects.filter(line_calls_q(line), company=company).order_by(
        "start_time", "call_id"
    )


@dataclass(frozen=True)
class CallSums:
    calls: int
    billable_minutes: int
    pool_minutes: int
    charged_minutes: int
    amount: Decimal  # exact (4 decimals)

    @property
    def amount_rounded(self) -> Decimal:
        return to_money(self.amount)


def call_sums(qs: QuerySet[CallRecord]) -> CallSums:
    """Counts and sums of calls, in one SQL aggregate."""
    row = qs.order_by().aggregate(
        calls=Count("pk"),
        billable=Coalesce(Sum("billable_minutes"), 0),
        pool=Coalesce(Sum("pool_minutes"), 0),
        charged=Coalesce(Sum("charged_minutes"), 0),
        amount=Coalesce(
            Sum("amount"),
            Value(Decimal("0")),
            output_field=DecimalField(max_digits=18, decimal_places=4),
        ),
    )
    return CallSums(
        calls=row["calls"],
        billable_minutes=row["billable"],
        pool_minutes=row["pool"],
        charged_minutes=row["charged"],
        amount=row["amount"],
    )


SUMS_CACHE_SECONDS = 7 * 24 * 3600


def line_call_sums(*, company: Company, line: InvoiceLine) -> CallSums:
    """The sums of a usage line's calls.

    The calls of an issued invoice are frozen (never re-rated, never moved),
    so their sums never change: they are computed once and kept in the cache
    for a week. A big line (30,000 calls) costs one aggregate of ~60 ms the
    first time and nothing after. A draft is always summed afresh.
    """
    qs = line_calls(company=company, line=line)
    if line.invoice.status == Invoice.Status.DRAFT:
        return call_sums(qs)
    key = f"bills:line-sums:v1:{line.pk}"
    cached = cache.get(key)
    if cached is not None:
        return CallSums(*cached)
    sums = call_sums(qs)
    cache.set(
        key,
        (
            sums.calls,
            sums.billable_minutes,
            sums.pool_minutes,
            sums.charged_minutes,
            sums.amount,
        ),
        SUMS_CACHE_SECONDS,
    )
    return sums


@dataclass(frozen=True)
class SumCheck:
    """Does the line equal the sum of its calls? (shown on the drill-down)."""

    line: InvoiceLine
    sums: CallSums

    @property
    def minutes_match(self) -> bool:
        line = self.line
        return (
            line.billable_minutes == self.sums.billable_minutes
            and line.pool_minutes == self.sums.pool_minutes
            and line.charged_minutes == self.sums.charged_minutes
        )

    @property
    def amount_match(self) -> bool:
        return self.line.amount == self.sums.amount_rounded

    @property
    def ok(self) -> bool:
        return self.minutes_match and self.amount_match


@dataclass
class CallPage:
    calls: list[CallRecord]
    next_cursor: int | None
    prev_cursor: int | None
    is_first: bool


PAGE_SIZE = 50


def _cursor_row(qs: QuerySet[CallRecord], pk) -> tuple[dt.datetime, str] | None:
    try:
        pk = int(pk)
    except (TypeError, ValueError):
        return None
    return qs.filter(pk=pk).values_list("start_time", "call_id").first()


def call_page(
    qs: QuerySet[CallRecord],
    *,
    after=None,
    before=None,
    page_size: int = PAGE_SIZE,
) -> CallPage:
    """One page of ``qs`` (ordered by start_time, call_id) by keyset pagination.

    ``after``/``before`` are the pk of the last/first call of the page the
    reader comes from. The key condition is written as
    ``start_time >= t AND (start_time > t OR call_id > c)`` so PostgreSQL
    starts the index scan at ``t`` instead of filtering from the month's
    first call: a deep page costs the same as the first one.
    """
    anchor = None
    backwards = False
    if after not in (None, ""):
        anchor = _cursor_row(qs, after)
    elif before not in (None, ""):
        anchor = _cursor_row(qs, before)
        backwards = anchor is not None
    page = qs
    if anchor is not None:
        t, c = anchor
        if backwards:
            page = qs.filter(
                Q(start_time__lt=t) | Q(start_time=t, call_id__lt=c),
                start_time__lte=t,
            ).order_by("-start_time", "-call_id")
        else:
            page = qs.filter(
                Q(start_time__gt=t) | Q(start_time=t, call_id__gt=c),
                start_time__gte=t,
            )
    rows = list(page[: page_size + 1])
    more = len(rows) > page_size
    rows = rows[:page_size]
    if backwards:
        rows.reverse()
        has_prev, has_next = more, True
    else:
        has_prev, has_next = anchor is not None, more
    # Pre-format what each row shows: a template filter or a choices lookup
    # per cell costs more than the query of the page.
    bands = {code: str(label) for code, label in Band.choices}
    for call in rows:
        call.caller_masked = mask_phone(call.caller_number)
        call.start_local = timezone.localtime(call.start_time).strftime(
            "%Y-%m-%d %H:%M:%S"
        )
        call.band_label = bands.get(call.band, call.band)
    return CallPage(
        calls=rows,
        next_cursor=rows[-1].pk if rows and has_next else None,
        prev_cursor=rows[0].pk if rows and has_prev else None,
        is_first=not has_prev,
    )


CALL_EXPORT_FIELDS = (
    "call_id",
    "number__number",
    "start_time",
    "caller_number",
    "caller_area",
    "duration_seconds",
    "direction",
    "status",
    "band",
    "billable_minutes",
    "pool_minutes",
    "charged_minutes",
    "rate",
    "amount",
)


def invoice_calls(*, company: Company, invoice: Invoice) -> QuerySet[CallRecord]:
    """Every call billed on an issued invoice (all numbers, all months)."""
    if invoice.company_id != company.pk:
        raise Http404
    return CallRecord.objects.filter(company=company, invoice=invoice).order_by(
        "start_time", "call_id"
    )


def iter_call_rows(qs: QuerySet[CallRecord], chunk_size: int = 2000) -> Iterator:
    """Calls as plain tuples (``CALL_EXPORT_FIELDS``, caller masked), streamed."""
    index = CALL_EXPORT_FIELDS.index("caller_number")
    for row in qs.values_list(*CALL_EXPORT_FIELDS).iterator(chunk_size=chunk_size):
        row = list(row)
        row[index] = mask_phone(row[index])
        yield row
