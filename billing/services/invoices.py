"""Invoices: compute, generate drafts, issue, void, credit notes, payments, the close.

- ``invoice_compute(*, company, period)`` prices a company-month from the
  catalog, the subscriptions and the rated calls, saving nothing (the
  month-to-date page uses it for the running month).
- ``invoice_generate(*, company, period)`` builds or refreshes the company's
  draft for the month. One invoice per company and month (a unique
  constraint), generation serialised per company by a row lock on the
  company; a draft's lines are replaced, an issued invoice is left alone.
- ``invoice_issue(*, invoice, by, now)`` rates what is pending, regenerates
  the draft under the lock, ties the calls it bills to it (they freeze),
  assigns the gap-free yearly number, copies buyer and seller and queues the
  email after commit. An invoice over the sanity bound stays a draft with a
  warning unless staff issue it with ``force=True``.
- ``invoice_void``, ``credit_note_create``, ``payment_record``: the only
  corrections once issued.
- ``close_run_start`` / ``close_company``: the monthly close, fanned out per
  company by ``billing.tasks.invoices``.

Which calls an invoice of month M bills: every rated call of M not yet on an
issued invoice, plus the *late calls*: rated calls of earlier months that are
on no invoice although their month's invoice is already issued (BILLING-RULES
§6, "late calls from YYYY-MM").
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings
from django.db import models, transaction
from django.db.models import Count, Exists, OuterRef, Prefetch, Q, Sum
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from accounts.models import Agent, Company
from audit.services import audit_record
from billing import pricing
from billing import rating as core
from billing.models import (
    CallRecord,
    CloseRun,
    CloseRunItem,
    CreditNote,
    DocumentSequence,
    Invoice,
    InvoiceEmail,
    InvoiceLine,
    Payment,
)
from billing.money import money_sum, to_money
from plans.models import (
    CatalogSettings,
    Subscription,
    SubscriptionPlanPeriod,
    TaxRate,
)

logger = logging.getLogger(__name__)

# Sanity bound (issue 5): hold an invoice that is negative, or more than
# SANITY_FACTOR × the previous month's and above SANITY_FLOOR.
SANITY_FACTOR = Decimal(3)
SANITY_FLOOR = Decimal("1000.00")

INVOICE_PREFIX = "HL"
# Companies per close task: each batch costs a constant number of queries.
CLOSE_BATCH = 50
CREDIT_NOTE_PREFIX = "CN"


class InvoiceError(Exception):
    """A write refused for a reason the user can act on (message is translated)."""


@dataclass(frozen=True)
class InvoiceComputation:
    """A company-month priced but not saved."""

    company_id: int
    period: dt.date
    priced: pricing.PricedInvoice
    language: str

    @property
    def lines(self) -> tuple[pricing.PricedLine, ...]:
        return self.priced.lines

    @property
    def vat(self) -> tuple[pricing.VatRow, ...]:
        return self.priced.vat

    @property
    def total(self) -> Decimal:
        return self.priced.total


# --- helpers -----------------------------------------------------------------


def month_of(day: dt.date) -> dt.date:
    return day.replace(day=1)


def previous_month(period: dt.date) -> dt.date:
    return (period.replace(day=1) - dt.timedelta(days=1)).replace(day=1)


def _language(company: Company) -> str:
    return company.language or settings.LANGUAGE_CODE


def _unbilled_calls(company_id: int, period: dt.date) -> Q:
    """Rated calls an invoice of ``period`` would bill today (see module doc)."""
    return _unbilled_calls_of([company_id], period)


def _unbilled_calls_of(company_ids, period: dt.date) -> Q:
    issued_month = Invoice.objects.filter(
        company_id=OuterRef("company_id"),
        period=OuterRef("period"),
        status__in=[Invoice.Status.ISSUED, Invoice.Status.PAID],
    )
    return Q(
        company_id__in=list(company_ids), invoice__isnull=True, rated_at__isnull=False
    ) & (Q(period=period) | Q(period__lt=period) & Exists(issued_month))


def _usage_kind(direction: str, band: str) -> str:
    if direction == core.OUTBOUND:
        return pricing.OUTBOUND
    return pricing.INBOUND_PEAK if band == core.PEAK else pricing.INBOUND_OFFPEAK


def _usage_by_subscription(calls: Q) -> dict[int, list[pricing.UsageIn]]:
    rows = (
        CallRecord.objects.filter(calls)
        .values("subscription_id", "period", "direction", "band", "rate")
        .annotate(
            n=Count("id"),
            billable=Sum("billable_minutes"),
            pool=Sum("pool_minutes"),
            charged=Sum("charged_minutes"),
        )
        .order_by()
    )
    # Outbound calls of both bands share one line per rate (BILLING-RULES §6:
    # "outbound minutes × rate"), so groups are merged by the line's kind.
    sums: dict[tuple, list[int]] = {}
    for r in rows:
        key = (
            r["subscription_id"],
            r["period"],
            _usage_kind(r["direction"], r["band"]),
            r["rate"],
        )
        acc = sums.setdefault(key, [0, 0, 0, 0])
        acc[0] += r["n"]
        acc[1] += int(r["billable"] or 0)
        acc[2] += int(r["pool"] or 0)
        acc[3] += int(r["charged"] or 0)
    out: dict[int, list[pricing.UsageIn]] = {}
    for (subscription_id, period, kind, rate), acc in sums.items():
        out.setdefault(subscription_id, []).append(
            pricing.UsageIn(
                period=period,
                kind=kind,
                rate=rate,
                calls=acc[0],
                billable_minutes=acc[1],
                pool_minutes=acc[2],
                charged_minutes=acc[3],
            )
        )
    return out


def _subscriptions(company_id, period: dt.date, extra_ids) -> list[Subscription]:
    """Subscriptions active in the month (or with usage to bill), with their
    plan periods, services and answering numbers; ``company_id`` may be a list."""
    first, last = core.month_bounds(period)
    active = Q(activated_on__isnull=False, activated_on__lte=last) & (
        Q(ended_on__isnull=True) | Q(ended_on__gte=first)
    )
    ids = company_id if isinstance(company_id, list | tuple | set) else [company_id]
    return list(
        Subscription.objects.filter(company_id__in=list(ids))
        .filter(active | Q(pk__in=list(extra_ids)))
        .select_related("number")
        .prefetch_related(
            Prefetch(
                "plan_periods",
                queryset=SubscriptionPlanPeriod.objects.select_related(
                    "plan"
                ).prefetch_related("plan__included_services"),
            ),
            "service_periods__service",
            "answer_numbers",
        )
        .order_by("number__number", "pk")
    )


def _number_month(
    sub: Subscription, period: dt.date, usage: list[pricing.UsageIn], plans: dict
) -> pricing.NumberMonth:
    from billing.services.rating import plan_terms_of

    periods = []
    included_services: dict = {}
    included_answers: dict = {}
    for pp in sorted(
        sub.plan_periods.all(), key=lambda p: (p.start_date or dt.date.min, p.pk)
    ):
        terms = plans.get(pp.plan_id)
        if terms is None:
            terms = plans[pp.plan_id] = plan_terms_of(pp.plan)
        periods.append(core.PlanPeriod(terms, pp.start_date, pp.end_date))
        included_services[pp.plan_id] = frozenset(
            s.pk for s in pp.plan.included_services.all()
        )
        included_answers[pp.plan_id] = pp.plan.included_answer_numbers
    segments: list[core.Segment] = []
    if sub.activated_on is not None:
        segments = core.month_segments(
            periods=periods,
            activated_on=sub.activated_on,
            ended_on=sub.ended_on,
            period=period,
        )
    first, last = core.month_bounds(period)
    fee = Decimal("0.00")
    if sub.activated_on is not None and first <= sub.activated_on <= last:
        fee = sub.selection_fee
    return pricing.NumberMonth(
        subscription_id=sub.pk,
        number_display=sub.number.display,
        segments=segments,
        services=[
            pricing.ServiceIn(
                service_id=sp.service_id,
                name=sp.service.name,
                monthly_fee=sp.service.monthly_fee,
                start_date=sp.start_date,
                end_date=sp.end_date,
            )
            for sp in sub.service_periods.all()
        ],
        answer_numbers=[
            pricing.AnswerIn(a.phone, a.start_date, a.end_date)
            for a in sub.answer_numbers.all()
        ],
        included_services=included_services,
        included_answer_numbers=included_answers,
        selection_fee=fee,
        usage=usage,
    )


def _catalog() -> tuple[dict, Decimal]:
    return (
        dict(TaxRate.objects.values_list("category", "rate")),
        CatalogSettings.load().extra_answer_number_fee,
    )


def _price(company, period, subs, usage, catalog, plans) -> InvoiceComputation:
    language = _language(company)
    tax_rates, extra_fee = catalog
    with translation.override(language):
        numbers = [_number_month(s, period, usage.get(s.pk, []), plans) for s in subs]
        priced = pricing.price_invoice(
            pricing.CompanyMonth(
                period=period,
                numbers=numbers,
                tax_rates=tax_rates,
                extra_answer_fee=extra_fee,
            )
        )
    return InvoiceComputation(
        company_id=company.pk, period=period, priced=priced, language=language
    )


def _compute(company: Company, period: dt.date, calls: Q) -> InvoiceComputation:
    period = month_of(period)
    usage = _usage_by_subscription(calls)
    subs = _subscriptions(company.pk, period, usage.keys())
    return _price(company, period, subs, usage, _catalog(), {})


def _compute_many(companies, period: dt.date) -> dict[int, InvoiceComputation]:
    """``invoice_compute`` of many companies in a constant number of queries."""
    period = month_of(period)
    ids = [c.pk for c in companies]
    usage = _usage_by_subscription(_unbilled_calls_of(ids, period))
    by_company: dict[int, list[Subscription]] = {c: [] for c in ids}
    for sub in _subscriptions(ids, period, usage.keys()):
        by_company[sub.company_id].append(sub)
    catalog = _catalog()
    plans: dict = {}
    return {
        c.pk: _price(c, period, by_company[c.pk], usage, catalog, plans)
        for c in companies
    }


def invoice_compute(*, company: Company, period: dt.date) -> InvoiceComputation:
    """The company's month priced from what is rated now; nothing is saved."""
    return _compute(company, period, _unbilled_calls(company.pk, month_of(period)))


def _write_lines(invoice: Invoice, computation: InvoiceComputation) -> None:
    # The caller holds the company lock and has checked the invoice is a draft,
    # so the model layer's frozen checks (a query each) are skipped here; the
    # database trigger still refuses lines of an issued invoice.
    lines = models.QuerySet(model=InvoiceLine)
    lines.filter(invoice=invoice).delete()
    lines.bulk_create(_line_rows(invoice.pk, computation))


def sanity_warning(
    *, total: Decimal, previous_total: Decimal | None, language: str
) -> str:
    """Why an invoice must be reviewed before it is issued, or ""."""
    previous = previous_total or Decimal("0.00")
    with translation.override(language):
        if total < 0:
            return _("The total is negative (¥%(total)s).") % {"total": total}
        if total > SANITY_FLOOR and total > SANITY_FACTOR * previous:
            return _(
                "The total ¥%(total)s is more than 3 times last month's "
                "¥%(previous)s and above ¥1,000: check it before issuing."
            ) % {"total": total, "previous": to_money(previous)}
    return ""


def _previous_total(company_id: int, period: dt.date) -> Decimal | None:
    return (
        Invoice.objects.filter(company_id=company_id, period=previous_month(period))
        .exclude(status=Invoice.Status.VOID)
        .values_list("total", flat=True)
        .first()
    )


def _lock_company(company_id: int) -> Company:
    return (
        Company.objects.select_for_update().select_related("agent").get(pk=company_id)
    )


def _store_draft(
    company: Company,
    invoice: Invoice | None,
    period: dt.date,
    computation: InvoiceComputation,
    now: dt.datetime,
    warning_language: str,
) -> Invoice:
    warning = sanity_warning(
        total=computation.total,
        previous_total=_previous_total(company.pk, period),
        language=warning_language,
    )
    if invoice is None:
        invoice = Invoice.objects.create(
            company=company,
            period=period,
            total=computation.total,
            warning=warning,
            generated_at=now,
            language=computation.language,
        )
    else:
        invoice.total = computation.total
        invoice.warning = warning
        invoice.generated_at = now
        invoice.language = computation.language
        models.QuerySet(model=Invoice).filter(
            pk=invoice.pk, status=Invoice.Status.DRAFT
        ).update(
            total=invoice.total,
            warning=warning,
            generated_at=now,
            language=invoice.language,
        )
    _write_lines(invoice, computation)
    return invoice


# --- drafts ------------------------------------------------------------------


@transaction.atomic
def invoice_generate(
    *, company: Company, period: dt.date, now: dt.datetime | None = None
) -> Invoice | None:
    """Build or refresh the company's draft for ``period``.

    Returns the invoice (unchanged when already issued), or None when the
    company has nothing to bill that month and no draft yet.
    """
    now = now or timezone.now()
    period = month_of(period)
    company = _lock_company(company.pk)
    invoice = (
        Invoice.objects.filter(company=company, period=period)
        .exclude(status=Invoice.Status.VOID)
        .first()
    )
    if invoice is not None and invoice.status != Invoice.Status.DRAFT:
        return invoice
    computation = invoice_compute(company=company, period=period)
    if invoice is None and not computation.lines:
        return None
    return _store_draft(
        company, invoice, period, computation, now, settings.LANGUAGE_CODE
    )


def rate_pending(*, company: Company, period: dt.date) -> int:
    """Rate the company's unrated calls of ``period`` and earlier months.

    Returns how many subscription-months were rated. Each month is rated
    again from scratch by the rating engine, so a call that arrived late in
    a draft month takes its place in the pool order.
    """
    from billing.services.rating import calls_rate_many

    keys = list(
        CallRecord.objects.filter(
            company_id=company.pk,
            rated_at__isnull=True,
            invoice__isnull=True,
            period__lte=month_of(period),
        )
        .values_list("subscription_id", "period")
        .distinct()
        .order_by()
    )
    if keys:
        calls_rate_many(keys=keys)
    return len(keys)


# --- issuing -----------------------------------------------------------------


def _next_number(kind: str, year: int) -> str:
    seq, _created = DocumentSequence.objects.select_for_update().get_or_create(
        kind=kind, year=year
    )
    seq.last += 1
    seq.save(update_fields=["last"])
    return f"{kind}-{year}-{seq.last:06d}"


def invoice_issue(
    *,
    invoice: Invoice,
    by=None,
    now: dt.datetime | None = None,
    force: bool = False,
    rate: bool = True,
) -> Invoice:
    """Issue a draft (see module doc). Idempotent: an issued invoice is returned
    as it is. Over the sanity bound the invoice stays a draft with its warning
    (returned with ``status == "draft"``) unless ``force``.
    """
    now = now or timezone.now()
    if rate:
        company = Company.objects.get(pk=invoice.company_id)
        rate_pending(company=company, period=invoice.period)
    with transaction.atomic():
        company = _lock_company(invoice.company_id)
        invoice = Invoice.objects.select_for_update().get(pk=invoice.pk)
        if invoice.status != Invoice.Status.DRAFT:
            return invoice
        period = invoice.period
        savepoint = transaction.savepoint()
        CallRecord.objects.filter(_unbilled_calls(company.pk, period)).update(
            invoice=invoice
        )
        computation = _compute(company, period, Q(invoice=invoice))
        warning = sanity_warning(
            total=computation.total,
            previous_total=_previous_total(company.pk, period),
            language=settings.LANGUAGE_CODE,
        )
        if warning and not force:
            # Held for review: the calls stay unbilled, the draft shows why.
            transaction.savepoint_rollback(savepoint)
            return _store_draft(
                company, invoice, period, computation, now, settings.LANGUAGE_CODE
            )
        transaction.savepoint_commit(savepoint)
        _store_draft(company, invoice, period, computation, now, settings.LANGUAGE_CODE)
        agent = company.agent
        issued_on = timezone.localdate(now)
        invoice.number = _next_number(INVOICE_PREFIX, issued_on.year)
        invoice.status = Invoice.Status.ISSUED
        invoice.issued_at = now
        invoice.issued_by = by if getattr(by, "pk", None) else None
        invoice.due_date = issued_on + dt.timedelta(
            days=settings.HOTLINE_INVOICE_DUE_DAYS
        )
        invoice.seller_name = agent.legal_name or agent.name
        invoice.seller_uscc = agent.uscc
        invoice.seller_address = agent.address
        invoice.seller_bank = " ".join(
            p for p in (agent.bank_name, agent.bank_account) if p
        )
        invoice.buyer_name = company.name
        invoice.buyer_uscc = company.uscc
        invoice.buyer_address = company.address
        invoice.buyer_email = company.billing_email
        invoice.language = _language(company)
        invoice.save()
        audit_record(
            actor=by,
            action="invoice.issue",
            target=invoice,
            before={"status": Invoice.Status.DRAFT},
            after={
                "status": invoice.status,
                "number": invoice.number,
                "total": invoice.total,
                "due_date": invoice.due_date,
            },
        )
        email = InvoiceEmail.objects.create(
            invoice=invoice, purpose="initial", to=company.billing_email
        )
        _send_after_commit(email.pk)
    logger.info(
        "issued %s (%s) for company %s", invoice.number, invoice.total, company.pk
    )
    return invoice


def _send_after_commit(email_id: int) -> None:
    from billing.tasks.invoices import invoice_email_send_task
    from ops.enqueue import enqueue_on_commit

    # A broker outage must not turn a committed issue into an error: the
    # email row stays pending and the sweeper (ops.sweep) queues it later.
    enqueue_on_commit(invoice_email_send_task, email_id, robust=True)


def invoice_resend(*, invoice: Invoice, by=None, to: str = "") -> InvoiceEmail:
    """Queue another sending of an issued invoice (purpose ``resend-N``)."""
    with transaction.atomic():
        invoice = Invoice.objects.select_for_update().get(pk=invoice.pk)
        if invoice.status == Invoice.Status.DRAFT:
            raise InvoiceError(_("A draft invoice cannot be emailed."))
        n = InvoiceEmail.objects.filter(
            invoice=invoice, purpose__startswith="resend-"
        ).count()
        email = InvoiceEmail.objects.create(
            invoice=invoice,
            purpose=f"resend-{n + 1}",
            to=to or invoice.buyer_email,
            requested_by=by if getattr(by, "pk", None) else None,
        )
        _send_after_commit(email.pk)
    return email


# --- corrections -------------------------------------------------------------


@transaction.atomic
def invoice_void(
    *, invoice: Invoice, reason: str, by=None, now: dt.datetime | None = None
) -> Invoice:
    """Void an issued (unpaid) invoice.

    The voided invoice and its lines stay exactly as issued. Its calls are
    released, so the month can be billed again by a replacement invoice (the
    next generation of that month builds a new draft with a new number when
    issued); until then nothing of that month is billed twice.
    """
    reason = (reason or "").strip()
    if not reason:
        raise InvoiceError(_("Say why the invoice is voided."))
    invoice = Invoice.objects.select_for_update().get(pk=invoice.pk)
    if invoice.status != Invoice.Status.ISSUED:
        raise InvoiceError(_("Only an issued, unpaid invoice can be voided."))
    invoice.status = Invoice.Status.VOID
    invoice.voided_at = now or timezone.now()
    invoice.void_reason = reason[:300]
    invoice.save(update_fields=["status", "voided_at", "void_reason"])
    CallRecord.objects.filter(invoice=invoice).update(invoice=None)
    audit_record(
        actor=by,
        action="invoice.void",
        target=invoice,
        before={"status": Invoice.Status.ISSUED},
        after={"status": invoice.status, "void_reason": invoice.void_reason},
    )
    return invoice


def invoice_remaining(invoice: Invoice) -> Decimal:
    """What remains of an invoice after its credit notes."""
    credited = money_sum(invoice.credit_notes.values_list("amount", flat=True))
    return invoice.total - credited


@transaction.atomic
def credit_note_create(
    *, invoice: Invoice, amount: Decimal, reason: str, by=None
) -> CreditNote:
    """A credit note (``CN-YYYY-NNNNNN``) of at most what remains of the invoice."""
    reason = (reason or "").strip()
    if not reason:
        raise InvoiceError(_("Say why the credit note is given."))
    invoice = Invoice.objects.select_for_update().get(pk=invoice.pk)
    if invoice.status not in (Invoice.Status.ISSUED, Invoice.Status.PAID):
        raise InvoiceError(_("Credit notes are only for issued invoices."))
    amount = to_money(amount)
    if amount <= 0:
        raise InvoiceError(_("A credit note must be for more than ¥0.00."))
    remaining = invoice_remaining(invoice)
    if amount > remaining:
        raise InvoiceError(
            _("A credit note cannot exceed what remains of the invoice (¥%(r)s).")
            % {"r": remaining}
        )
    year = timezone.localdate().year
    note = CreditNote.objects.create(
        invoice=invoice,
        number=_next_number(CREDIT_NOTE_PREFIX, year),
        amount=amount,
        reason=reason[:300],
        created_by=by if getattr(by, "pk", None) else None,
    )
    audit_record(
        actor=by,
        action="invoice.credit_note",
        target=invoice,
        before={"remaining": remaining},
        after={
            "credit_note": note.number,
            "amount": note.amount,
            "reason": note.reason,
            "remaining": remaining - note.amount,
        },
    )
    return note


@transaction.atomic
def payment_record(
    *,
    invoice: Invoice,
    paid_on: dt.date,
    method: str,
    reference: str = "",
    amount: Decimal | None = None,
    by=None,
) -> Payment:
    """Record a payment; the invoice is paid once payments cover what remains."""
    invoice = Invoice.objects.select_for_update().get(pk=invoice.pk)
    if invoice.status != Invoice.Status.ISSUED:
        raise InvoiceError(_("Only an issued, unpaid invoice can be marked paid."))
    if method not in Payment.Method.values:
        raise InvoiceError(_("Choose a payment method."))
    paid = money_sum(invoice.payments.values_list("amount", flat=True))
    due = invoice_remaining(invoice) - paid
    amount = due if amount is None else to_money(amount)
    if amount <= 0 and due > 0:
        raise InvoiceError(_("A payment must be for more than ¥0.00."))
    payment = Payment.objects.create(
        invoice=invoice,
        paid_on=paid_on,
        method=method,
        reference=(reference or "").strip()[:100],
        amount=amount,
        recorded_by=by if getattr(by, "pk", None) else None,
    )
    if paid + amount >= invoice_remaining(invoice):
        invoice.status = Invoice.Status.PAID
        invoice.save(update_fields=["status"])
    audit_record(
        actor=by,
        action="invoice.payment",
        target=invoice,
        before={"status": Invoice.Status.ISSUED, "paid": paid},
        after={
            "status": invoice.status,
            "paid": paid + amount,
            "payment": {
                "amount": amount,
                "paid_on": paid_on,
                "method": method,
                "reference": payment.reference,
            },
        },
    )
    return payment


# --- the monthly close -------------------------------------------------------


def close_candidates(agent: Agent, period: dt.date):
    """Companies with something to bill in ``period``: a number active in the
    month, or unbilled calls up to it."""
    first, last = core.month_bounds(period)
    active = Subscription.objects.filter(
        company=OuterRef("pk"), activated_on__isnull=False, activated_on__lte=last
    ).filter(Q(ended_on__isnull=True) | Q(ended_on__gte=first))
    calls = CallRecord.objects.filter(
        company=OuterRef("pk"), invoice__isnull=True, period__lte=first
    )
    return (
        Company.objects.filter(agent=agent)
        .filter(Exists(active) | Exists(calls))
        .order_by("pk")
    )


def close_run_start(
    *,
    agent: Agent,
    period: dt.date,
    started_by=None,
    issue: bool | None = None,
    company_ids: list[int] | None = None,
    now: dt.datetime | None = None,
    fan_out: bool = True,
) -> CloseRun:
    """Create a close run with one item per company and fan it out after commit
    (one ``close_company_task`` per company); ``fan_out=False`` leaves the
    items for the caller to run (the management command)."""
    now = now or timezone.now()
    period = month_of(period)
    if issue is None:
        issue = agent.auto_issue_invoices
    with transaction.atomic():
        companies = close_candidates(agent, period)
        if company_ids is not None:
            companies = companies.filter(pk__in=company_ids)
        ids = list(companies.values_list("pk", flat=True))
        run = CloseRun.objects.create(
            period=period,
            agent=agent,
            started_by=started_by if getattr(started_by, "pk", None) else None,
            issue=issue,
            companies_total=len(ids),
            started_at=now,
            status=CloseRun.Status.RUNNING if ids else CloseRun.Status.DONE,
            finished_at=None if ids else now,
        )
        CloseRunItem.objects.bulk_create(
            [CloseRunItem(run=run, company_id=c) for c in ids], batch_size=2000
        )
        if fan_out and ids:
            transaction.on_commit(lambda: _fan_out(run.pk))
    return run


def _fan_out(run_id: int) -> None:
    from billing.tasks.invoices import close_run_fan_out_task
    from ops.enqueue import enqueue

    # Broker down: recorded for the sweeper, the page still shows the run.
    enqueue(close_run_fan_out_task, run_id)


def close_run_fan_out(*, run: CloseRun) -> int:
    """Enqueue the run's pending companies, ``HOTLINE_CLOSE_BATCH`` per task."""
    from billing.tasks.invoices import close_companies_task

    period = run.period.isoformat()
    ids = list(
        run.items.filter(status=CloseRunItem.Status.PENDING)
        .order_by("company_id")
        .values_list("company_id", flat=True)
    )
    if not ids:  # e.g. the sweeper, after a worker died past the last item
        _finish_run_if_done(run)
    # Fixed-size batches (a task each); a batch that fails is retried company
    # by company, so one bad company never holds up the others.
    size = getattr(settings, "HOTLINE_CLOSE_BATCH", CLOSE_BATCH)
    with close_companies_task.app.producer_or_acquire() as producer:
        for i in range(0, len(ids), size):
            close_companies_task.apply_async(
                (ids[i : i + size], period, run.pk), producer=producer
            )
    return len(ids)


def close_company(
    *,
    company: Company,
    period: dt.date,
    issue: bool,
    run: CloseRun | None = None,
    now: dt.datetime | None = None,
) -> str:
    """One company's close: rate pending calls, build the draft, maybe issue.

    Idempotent: running it again rebuilds the same draft or leaves the issued
    invoice alone. Returns the item status (draft, issued, held, skipped).
    """
    now = now or timezone.now()
    period = month_of(period)
    # One commit for the rating, the draft and the issue. The run item is
    # written after it, so the last company to finish sees every other one.
    with transaction.atomic():
        rate_pending(company=company, period=period)
        invoice = invoice_generate(company=company, period=period, now=now)
        if invoice is None:
            status = CloseRunItem.Status.SKIPPED
        elif invoice.status != Invoice.Status.DRAFT:
            status = CloseRunItem.Status.ISSUED
        elif issue:
            invoice = invoice_issue(invoice=invoice, now=now, rate=False)
            status = (
                CloseRunItem.Status.ISSUED
                if invoice.status != Invoice.Status.DRAFT
                else CloseRunItem.Status.HELD
            )
        else:
            status = (
                CloseRunItem.Status.HELD
                if invoice.warning
                else CloseRunItem.Status.DRAFT
            )
    if run is not None:
        close_item_finish(run=run, company=company, status=status, invoice=invoice)
    return status


def _line_rows(invoice_id: int, computation: InvoiceComputation) -> list:
    return [
        InvoiceLine(
            invoice_id=invoice_id,
            subscription_id=ln.subscription_id,
            number_display=ln.number_display,
            position=i,
            kind=ln.kind,
            usage_period=ln.usage_period,
            description=ln.description[:300],
            tax_category=ln.tax_category,
            tax_rate=ln.tax_rate,
            quantity=ln.quantity,
            unit=ln.unit[:20],
            unit_price=ln.unit_price,
            amount=ln.amount,
            billable_minutes=ln.billable_minutes,
            pool_minutes=ln.pool_minutes,
            charged_minutes=ln.charged_minutes,
            period_start=ln.period_start,
            period_end=ln.period_end,
        )
        for i, ln in enumerate(computation.lines, start=1)
    ]


def invoice_generate_many(
    *, companies, period: dt.date, now: dt.datetime | None = None
) -> dict[int, Invoice | None]:
    """``invoice_generate`` for a batch of companies in a constant number of
    queries (the close's batches). Same locks (the companies' rows, in id
    order), same result as generating them one by one."""
    now = now or timezone.now()
    period = month_of(period)
    with transaction.atomic():
        locked = list(
            Company.objects.select_for_update()
            .filter(pk__in=[c.pk for c in companies])
            .order_by("pk")
        )
        existing = {
            inv.company_id: inv
            for inv in Invoice.objects.filter(
                company__in=locked, period=period
            ).exclude(status=Invoice.Status.VOID)
        }
        todo = [
            c for c in locked if c.pk not in existing or not existing[c.pk].is_frozen
        ]
        computations = _compute_many(todo, period) if todo else {}
        previous = dict(
            Invoice.objects.filter(company__in=todo, period=previous_month(period))
            .exclude(status=Invoice.Status.VOID)
            .values_list("company_id", "total")
        )
        result: dict[int, Invoice | None] = {c.pk: existing.get(c.pk) for c in locked}
        creates, updates = [], []
        for company in todo:
            comp = computations[company.pk]
            invoice = existing.get(company.pk)
            if invoice is None and not comp.lines:
                continue
            warning = sanity_warning(
                total=comp.total,
                previous_total=previous.get(company.pk),
                language=settings.LANGUAGE_CODE,
            )
            if invoice is None:
                invoice = Invoice(company=company, period=period)
                creates.append(invoice)
            else:
                updates.append(invoice)
            invoice.total = comp.total
            invoice.warning = warning
            invoice.generated_at = now
            invoice.language = comp.language
            result[company.pk] = invoice
        plain = models.QuerySet(model=Invoice)
        plain.bulk_create(creates)
        if updates:
            plain.bulk_update(updates, ["total", "warning", "generated_at", "language"])
        lines = models.QuerySet(model=InvoiceLine)
        if updates:
            lines.filter(invoice__in=[i.pk for i in updates]).delete()
        rows = []
        for invoice in (*creates, *updates):
            rows.extend(_line_rows(invoice.pk, computations[invoice.company_id]))
        lines.bulk_create(rows, batch_size=2000)
    return result


def rate_pending_many(*, company_ids, period: dt.date) -> int:
    """``rate_pending`` for many companies: one rating run for all of them."""
    from billing.services.rating import calls_rate_many

    keys = list(
        CallRecord.objects.filter(
            company_id__in=list(company_ids),
            rated_at__isnull=True,
            invoice__isnull=True,
            period__lte=month_of(period),
        )
        .values_list("subscription_id", "period")
        .distinct()
        .order_by()
    )
    if keys:
        calls_rate_many(keys=keys)
    return len(keys)


def close_batch(*, run: CloseRun, company_ids: list[int]) -> dict[int, str]:
    """Close a fixed-size batch of the run's companies in constant queries.

    The same result as ``close_company`` for each; issuing (when the run
    issues) stays per company. Returns {company id: item status}.
    """
    now = timezone.now()
    period = run.period
    companies = list(Company.objects.filter(pk__in=company_ids).order_by("pk"))
    statuses: dict[int, str] = {}
    with transaction.atomic():
        rate_pending_many(company_ids=[c.pk for c in companies], period=period)
        invoices = invoice_generate_many(companies=companies, period=period, now=now)
        for company in companies:
            invoice = invoices.get(company.pk)
            if invoice is None:
                status = CloseRunItem.Status.SKIPPED
            elif invoice.status != Invoice.Status.DRAFT:
                status = CloseRunItem.Status.ISSUED
            elif run.issue:
                invoice = invoice_issue(invoice=invoice, now=now, rate=False)
                invoices[company.pk] = invoice
                status = (
                    CloseRunItem.Status.ISSUED
                    if invoice.status != Invoice.Status.DRAFT
                    else CloseRunItem.Status.HELD
                )
            else:
                status = (
                    CloseRunItem.Status.HELD
                    if invoice.warning
                    else CloseRunItem.Status.DRAFT
                )
            statuses[company.pk] = status
    items = list(CloseRunItem.objects.filter(run=run, company_id__in=list(statuses)))
    for item in items:
        item.status = statuses[item.company_id]
        invoice = invoices.get(item.company_id)
        item.invoice_id = invoice.pk if invoice is not None else None
        item.error = ""
        item.finished_at = timezone.now()
    CloseRunItem.objects.bulk_update(
        items, ["status", "invoice", "error", "finished_at"]
    )
    _finish_run_if_done(run)
    return statuses


def _finish_run_if_done(run: CloseRun) -> None:
    if not CloseRunItem.objects.filter(
        run=run, status=CloseRunItem.Status.PENDING
    ).exists():
        CloseRun.objects.filter(pk=run.pk, status=CloseRun.Status.RUNNING).update(
            status=CloseRun.Status.DONE, finished_at=timezone.now()
        )


def close_item_finish(
    *, run: CloseRun, company: Company, status: str, invoice=None, error: str = ""
) -> None:
    CloseRunItem.objects.filter(run=run, company=company).update(
        status=status, invoice=invoice, error=error[:300], finished_at=timezone.now()
    )
    _finish_run_if_done(run)


def close_run_progress(run: CloseRun) -> dict:
    """Counts per item status and whether the run is finished (progress page)."""
    counts = dict(run.items.values_list("status").annotate(n=Count("id")).order_by())
    done = sum(n for s, n in counts.items() if s != CloseRunItem.Status.PENDING)
    total = run.companies_total
    return {
        "id": run.pk,
        "status": run.status,
        "total": run.companies_total,
        "done": done,
        "percent": int(done * 100 / total) if total else 100,
        "counts": {s: counts.get(s, 0) for s in CloseRunItem.Status.values},
        "finished": run.status == CloseRun.Status.DONE,
    }


# --- email -------------------------------------------------------------------

# A claim older than this is taken to belong to a worker that died mid-send.
EMAIL_CLAIM_STALE = dt.timedelta(minutes=10)


def invoice_email_send(*, email_id: int, now: dt.datetime | None = None) -> str:
    """Send one invoice email once; record the attempt; raise on SMTP failure.

    The sending is claimed by a conditional update (pending or failed →
    sending), so two deliveries of the task never both send. A failure is
    recorded and re-raised for the task's retry with backoff.
    """
    from billing.emails import invoice_email_message

    now = now or timezone.now()
    claimable = Q(status__in=[InvoiceEmail.Status.PENDING, InvoiceEmail.Status.FAILED])
    claimable |= Q(
        status=InvoiceEmail.Status.SENDING, claimed_at__lt=now - EMAIL_CLAIM_STALE
    )
    claimed = (
        InvoiceEmail.objects.filter(pk=email_id)
        .filter(claimable)
        .update(status=InvoiceEmail.Status.SENDING, claimed_at=now)
    )
    if not claimed:
        return "skipped"
    email = InvoiceEmail.objects.select_related("invoice__company").get(pk=email_id)
    try:
        invoice_email_message(email).send()
    except Exception as exc:
        attempt = {
            "at": timezone.now().isoformat(),
            "result": "failed",
            "error": f"{type(exc).__name__}: {exc}"[:500],
        }
        # Only the claimer writes the row; a row gone meanwhile stays gone.
        InvoiceEmail.objects.filter(pk=email.pk).update(
            attempts=[*email.attempts, attempt], status=InvoiceEmail.Status.FAILED
        )
        raise
    sent = timezone.now()
    InvoiceEmail.objects.filter(pk=email.pk).update(
        attempts=[*email.attempts, {"at": sent.isoformat(), "result": "sent"}],
        status=InvoiceEmail.Status.SENT,
        sent_at=sent,
    )
    return "sent"
