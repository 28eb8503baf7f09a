"""Invoices from calls to issued documents, checked against hand calculations.

The March 2026 month of ``march_company`` (31 days), by BILLING-RULES:

Number A 400-810-0001, monthly ¥199 / 1,000 min, activated 2026-03-10:
  active days 10..31 = 22
  package fee   199 × 22 / 31 = 141.2258…            → 141.23  (9%)
  pool          floor(1000 × 22 / 31) = floor(709.67) = 709 min
  IVR           included in the package               →   0.00  (6%)
  recording     20 × 22 / 31 = 14.1935…                →  14.19  (6%)
  answering     3 bound, 1 included: 2 × 22 = 44 number-days
                10 × 44 / 31 = 14.1935…                →  14.19  (6%)
  selection fee (activated this month)                → 2000.00 (6%)
  calls in pool order (start time):
    03-16 Mon 10:00 400 min peak      pool 400 (left 309)
    03-18 Wed holiday 20 min off-peak pool  20 (left 289)
    03-19 Thu 09:00 61 s = 2 min peak pool   2 (left 287)
    03-19 missed                       0 min
    03-20 outbound 125 s = 3 min       never from the pool
    03-21 Sat 301 min off-peak         pool 287, charged 14 (split call)
    03-22 Sun make-up workday 5 min peak: pool empty, charged 5
  inbound peak     billable 407, pool 402, charged 5 × 0.15 = 0.75
  inbound off-peak billable 321, pool 307, charged 14 × 0.10 = 1.40
  outbound         3 × 0.20 = 0.60
Number B 400-810-0002, 「3000元/3年」 from 2026-03-01:
  term price (term starts this month)                 → 3000.00 (9%)
  10-min call: billable 10, pool 10, charged 0         →   0.00
VAT:
  basic  gross 141.23 + 0.75 + 1.40 + 0.60 + 3000.00 + 0.00 = 3143.98
         tax 3143.98 × 0.09 / 1.09 = 259.5947… → 259.59, net 2884.39
  value-added gross 0.00 + 14.19 + 14.19 + 2000.00 = 2028.38
         tax 2028.38 × 0.06 / 1.06 = 114.8139… → 114.81, net 1913.57
Total 3143.98 + 2028.38 = 5172.36
"""

import datetime as dt
from decimal import Decimal

import pytest
from django.core import mail

from billing.models import CallRecord, Invoice, InvoiceEmail
from billing.services.invoices import (
    InvoiceError,
    credit_note_create,
    invoice_compute,
    invoice_generate,
    invoice_issue,
    invoice_void,
    payment_record,
    rate_pending,
)
from tests.billing.invoice_helpers import call, march_company
from tests.factories import (
    AgentStaffFactory,
    CompanyFactory,
    SubscriptionFactory,
    shanghai,
)

MARCH = dt.date(2026, 3, 1)
APRIL = dt.date(2026, 4, 1)
ISSUE_TIME = shanghai(2026, 4, 1, 9, 0)

pytestmark = pytest.mark.django_db

EXPECTED_MARCH = [
    # (number, kind, quantity, unit price, amount, billable, pool, charged)
    ("400-810-0001", "plan_fee", "1", "141.23", "141.23", None, None, None),
    ("400-810-0001", "service", "1", "0.00", "0.00", None, None, None),
    ("400-810-0001", "service", "1", "14.19", "14.19", None, None, None),
    ("400-810-0001", "extra_answer", "1", "14.19", "14.19", None, None, None),
    ("400-810-0001", "selection_fee", "1", "2000.00", "2000.00", None, None, None),
    ("400-810-0001", "inbound_peak", "5", "0.1500", "0.75", 407, 402, 5),
    ("400-810-0001", "inbound_offpeak", "14", "0.1000", "1.40", 321, 307, 14),
    ("400-810-0001", "outbound", "3", "0.2000", "0.60", 3, 0, 3),
    ("400-810-0002", "term_price", "1", "3000.00", "3000.00", None, None, None),
    ("400-810-0002", "inbound_peak", "0", "0.1200", "0.00", 10, 10, 0),
]


def as_rows(lines):
    return [
        (
            ln.number_display,
            ln.kind,
            f"{ln.quantity.normalize():f}",
            str(
                ln.unit_price.quantize(
                    Decimal("0.01")
                    if ln.kind not in ("inbound_peak", "inbound_offpeak", "outbound")
                    else Decimal("0.0001")
                )
            ),
            str(ln.amount),
            ln.billable_minutes,
            ln.pool_minutes,
            ln.charged_minutes,
        )
        for ln in lines
    ]


def test_march_draft_matches_the_hand_calculation():
    # given the company's March calls, rated
    company, _a, _b = march_company()
    rate_pending(company=company, period=MARCH)

    # when the draft is generated
    invoice = invoice_generate(company=company, period=MARCH)

    # then every line, the VAT table and the total match the module docstring
    assert invoice.status == Invoice.Status.DRAFT
    assert invoice.number is None
    assert as_rows(invoice.lines.order_by("position")) == EXPECTED_MARCH
    assert invoice.total == Decimal("5172.36")
    vat = {
        row.category: row for row in invoice_compute(company=company, period=MARCH).vat
    }
    assert (vat["basic"].gross, vat["basic"].tax, vat["basic"].net) == (
        Decimal("3143.98"),
        Decimal("259.59"),
        Decimal("2884.39"),
    )
    assert (
        vat["value_added"].gross,
        vat["value_added"].tax,
        vat["value_added"].net,
    ) == (Decimal("2028.38"), Decimal("114.81"), Decimal("1913.57"))


def test_descriptions_speak_the_company_language():
    company, _a, _b = march_company()
    company.language = "en"
    company.save()
    rate_pending(company=company, period=MARCH)

    invoice = invoice_generate(company=company, period=MARCH)

    texts = list(
        invoice.lines.order_by("position").values_list("description", flat=True)
    )
    assert texts[0] == "Package fee: Business 199, 22 of 31 days (¥199.00 × 22 ÷ 31)"
    assert texts[1] == "IVR (included in the package)"
    assert texts[6].startswith("Inbound calls, off-peak: 321 min billable, 307 from")


def test_second_generation_of_a_month_creates_no_new_invoice():
    company, _a, _b = march_company()
    rate_pending(company=company, period=MARCH)
    first = invoice_generate(company=company, period=MARCH)
    first_lines = as_rows(first.lines.order_by("position"))

    second = invoice_generate(company=company, period=MARCH)

    assert second.pk == first.pk
    assert Invoice.objects.filter(company=company).count() == 1
    assert as_rows(second.lines.order_by("position")) == first_lines


def test_first_big_invoice_is_held_then_issued_by_staff(
    django_capture_on_commit_callbacks,
):
    # given a March draft of ¥5,172.36 and no February invoice (¥0.00)
    company, _a, _b = march_company()
    staff = AgentStaffFactory(agent=company.agent)
    invoice = invoice_generate(company=company, period=MARCH)

    # when it is issued automatically, it is held (over 3 × ¥0 and ¥1,000)
    held = invoice_issue(invoice=invoice, now=ISSUE_TIME)
    assert held.status == Invoice.Status.DRAFT
    assert "5172.36" in held.warning
    assert not CallRecord.objects.filter(invoice__isnull=False).exists()
    assert mail.outbox == []

    # when staff issue it after checking
    with django_capture_on_commit_callbacks(execute=True):
        issued = invoice_issue(invoice=invoice, by=staff, now=ISSUE_TIME, force=True)

    # then it has the first number of 2026, copies and due date, calls frozen
    assert issued.status == Invoice.Status.ISSUED
    assert issued.number == "HL-2026-000001"
    assert issued.total == Decimal("5172.36")
    assert issued.due_date == dt.date(2026, 4, 16)  # 15 days after 2026-04-01
    assert issued.issued_by == staff
    assert issued.buyer_name == "深圳市华南贸易有限公司"
    assert issued.buyer_uscc == company.uscc
    assert issued.seller_name == company.agent.legal_name
    assert issued.seller_uscc == company.agent.uscc
    assert CallRecord.objects.filter(invoice=issued).count() == 8
    email = InvoiceEmail.objects.get(invoice=issued)
    assert (email.purpose, email.status, email.to) == (
        "initial",
        "sent",
        company.billing_email,
    )
    assert len(mail.outbox) == 1


def test_issuing_again_changes_nothing(django_capture_on_commit_callbacks):
    company, _a, _b = march_company()
    invoice = invoice_generate(company=company, period=MARCH)
    with django_capture_on_commit_callbacks(execute=True):
        issued = invoice_issue(invoice=invoice, now=ISSUE_TIME, force=True)

    with django_capture_on_commit_callbacks(execute=True):
        again = invoice_issue(invoice=issued, now=ISSUE_TIME + dt.timedelta(days=1))
        regenerated = invoice_generate(company=company, period=MARCH)

    assert again.number == regenerated.number == "HL-2026-000001"
    assert regenerated.issued_at == ISSUE_TIME
    assert len(mail.outbox) == 1


def test_late_calls_appear_on_the_next_invoice():
    # given March issued (its 709-minute pool used up)
    company, a, _b = march_company()
    march = invoice_issue(
        invoice=invoice_generate(company=company, period=MARCH),
        now=ISSUE_TIME,
        force=True,
    )
    # when a March call arrives after the issue, and an April call
    late = call(a, shanghai(2026, 3, 25, 11, 0), 4 * 60)  # Wed peak, 4 min
    call(a, shanghai(2026, 4, 8, 21, 0), 90)  # Wed off-peak, 2 min (pool)
    rate_pending(company=company, period=APRIL)
    april = invoice_generate(company=company, period=APRIL, now=ISSUE_TIME)
    late.refresh_from_db()

    # then the late call is charged (nothing left of March's pool) on April's
    # invoice, and March's invoice is unchanged
    assert late.charged_minutes == 4 and late.invoice is None
    rows = as_rows(april.lines.order_by("position"))
    # April, a full month for A: 199.00, IVR 0.00, recording 20.00,
    # 2 extra answering numbers × 10.00 = 20.00; off-peak 2 min from the pool;
    # late: 4 × 0.15 = 0.60. B: inside its prepaid term, 0.00.
    assert rows == [
        ("400-810-0001", "plan_fee", "1", "199.00", "199.00", None, None, None),
        ("400-810-0001", "service", "1", "0.00", "0.00", None, None, None),
        ("400-810-0001", "service", "1", "20.00", "20.00", None, None, None),
        ("400-810-0001", "extra_answer", "2", "10.00", "20.00", None, None, None),
        ("400-810-0001", "inbound_offpeak", "0", "0.1000", "0.00", 2, 2, 0),
        ("400-810-0001", "inbound_peak", "4", "0.1500", "0.60", 4, 0, 4),
        ("400-810-0002", "term_price", "1", "0.00", "0.00", None, None, None),
    ]
    late_line = april.lines.get(kind="inbound_peak")
    assert late_line.usage_period == MARCH
    assert "2026-03" in late_line.description
    assert april.total == Decimal("239.60")
    march.refresh_from_db()
    assert march.total == Decimal("5172.36")
    assert march.lines.count() == 10

    # when April is issued, the late call is billed by it
    april = invoice_issue(invoice=april, now=shanghai(2026, 5, 1, 9, 0))
    assert april.number == "HL-2026-000002"
    late.refresh_from_db()
    assert late.invoice == april


def test_invoice_numbers_are_gap_free_per_year():
    numbers = []
    for _ in range(3):
        sub = SubscriptionFactory(company=CompanyFactory(), activated_on=MARCH)
        invoice = invoice_generate(company=sub.company, period=MARCH)
        numbers.append(invoice_issue(invoice=invoice, now=ISSUE_TIME).number)
    next_year = SubscriptionFactory(company=CompanyFactory(), activated_on=MARCH)
    invoice = invoice_generate(company=next_year.company, period=MARCH)
    numbers.append(
        invoice_issue(invoice=invoice, now=shanghai(2027, 1, 2, 9, 0)).number
    )

    assert numbers == [
        "HL-2026-000001",
        "HL-2026-000002",
        "HL-2026-000003",
        "HL-2027-000001",
    ]


def _issued_plain_invoice():
    # A full March on the ¥199 plan, nothing else: ¥199.00.
    sub = SubscriptionFactory(activated_on=MARCH)
    invoice = invoice_generate(company=sub.company, period=MARCH)
    return invoice_issue(invoice=invoice, now=ISSUE_TIME)


def test_credit_notes_never_exceed_what_remains():
    invoice = _issued_plain_invoice()
    assert invoice.total == Decimal("199.00")

    first = credit_note_create(
        invoice=invoice, amount=Decimal("150.00"), reason="故障补偿"
    )
    with pytest.raises(InvoiceError):
        credit_note_create(invoice=invoice, amount=Decimal("49.01"), reason="再补偿")
    second = credit_note_create(
        invoice=invoice, amount=Decimal("49.00"), reason="再补偿"
    )

    assert first.number.startswith("CN-") and first.number.endswith("-000001")
    assert second.number.endswith("-000002")
    with pytest.raises(InvoiceError):
        credit_note_create(invoice=invoice, amount=Decimal("0.01"), reason="超额")


def test_credit_note_needs_a_reason_and_an_issued_invoice():
    sub = SubscriptionFactory(activated_on=MARCH)
    draft = invoice_generate(company=sub.company, period=MARCH)
    with pytest.raises(InvoiceError):
        credit_note_create(invoice=draft, amount=Decimal("1.00"), reason="x")
    issued = invoice_issue(invoice=draft, now=ISSUE_TIME)
    with pytest.raises(InvoiceError):
        credit_note_create(invoice=issued, amount=Decimal("1.00"), reason="  ")


def test_payment_marks_the_invoice_paid_and_void_needs_a_reason():
    invoice = _issued_plain_invoice()
    with pytest.raises(InvoiceError):
        invoice_void(invoice=invoice, reason="")

    payment_record(
        invoice=invoice,
        paid_on=dt.date(2026, 4, 10),
        method="bank_transfer",
        reference="对公转账 0001",
    )

    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PAID
    assert invoice.payments.get().amount == Decimal("199.00")
    with pytest.raises(InvoiceError):
        invoice_void(invoice=invoice, reason="重复开具")


def test_partial_payment_leaves_the_invoice_issued():
    invoice = _issued_plain_invoice()
    credit_note_create(invoice=invoice, amount=Decimal("19.00"), reason="补偿")

    payment_record(
        invoice=invoice,
        paid_on=dt.date(2026, 4, 10),
        method="alipay",
        amount=Decimal("100.00"),
    )
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.ISSUED

    # 199.00 − 19.00 credited − 100.00 paid = 80.00 remain
    payment_record(invoice=invoice, paid_on=dt.date(2026, 4, 11), method="wechat")
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PAID
    assert invoice.payments.order_by("paid_on").last().amount == Decimal("80.00")


def test_voided_invoice_keeps_its_number_and_lines():
    invoice = _issued_plain_invoice()

    invoice_void(invoice=invoice, reason="客户注销", now=ISSUE_TIME)

    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.VOID
    assert invoice.number == "HL-2026-000001"
    assert invoice.lines.count() == 1


def test_a_voided_month_is_billed_again_by_a_replacement_invoice():
    # given the hand-worked March issued (¥5,172.36) with its 8 calls frozen
    company, _a, _b = march_company()
    voided = invoice_issue(
        invoice=invoice_generate(company=company, period=MARCH),
        now=ISSUE_TIME,
        force=True,
    )

    # when it is voided and March is generated and issued again
    invoice_void(invoice=voided, reason="开票信息有误", now=ISSUE_TIME)
    draft = invoice_generate(company=company, period=MARCH)
    replacement = invoice_issue(invoice=draft, now=ISSUE_TIME, force=True)

    # then the voided one is untouched and the replacement bills the same
    # calls once, under the next number
    voided.refresh_from_db()
    assert (voided.status, voided.number, voided.total) == (
        Invoice.Status.VOID,
        "HL-2026-000001",
        Decimal("5172.36"),
    )
    assert replacement.pk != voided.pk
    assert replacement.number == "HL-2026-000002"
    assert as_rows(replacement.lines.order_by("position")) == EXPECTED_MARCH
    assert CallRecord.objects.filter(invoice=replacement).count() == 8
    assert not CallRecord.objects.filter(invoice=voided).exists()


def test_calls_of_a_voided_month_are_not_billed_as_late_calls_next_month():
    # given March issued then voided, and no replacement yet
    company, _a, _b = march_company()
    voided = invoice_issue(
        invoice=invoice_generate(company=company, period=MARCH),
        now=ISSUE_TIME,
        force=True,
    )
    invoice_void(invoice=voided, reason="开票信息有误", now=ISSUE_TIME)

    # when April is generated
    april = invoice_generate(company=company, period=APRIL)

    # then no March usage slips onto April: it waits for March's replacement
    assert not april.lines.filter(usage_period=MARCH).exists()


def test_outbound_calls_of_both_bands_make_one_line_rounded_once():
    # given outbound calls at peak (Mon 10:00) and off-peak (Mon 21:00) on a
    # plan whose outbound rate has 4 decimals: 0.1234 / min
    from tests.billing.invoice_helpers import call
    from tests.factories import PlanFactory

    plan = PlanFactory(rate_outbound=Decimal("0.1234"))
    sub = SubscriptionFactory(plan=plan, activated_on=MARCH)
    call(sub, shanghai(2026, 3, 16, 10, 0), 7 * 60, direction="outbound")
    call(sub, shanghai(2026, 3, 16, 21, 0), 8 * 60, direction="outbound")
    rate_pending(company=sub.company, period=MARCH)

    # when March is generated
    invoice = invoice_generate(company=sub.company, period=MARCH)

    # then one outbound line: 15 × 0.1234 = 1.851 → 1.85 (two lines rounded
    # separately would give 0.8638 → 0.86 plus 0.9872 → 0.99 = 1.85 too, but
    # the rule is one line per number: "outbound minutes × rate")
    outbound = invoice.lines.filter(kind="outbound")
    assert outbound.count() == 1
    line = outbound.get()
    assert (line.quantity, line.amount, line.billable_minutes) == (
        Decimal("15"),
        Decimal("1.85"),
        15,
    )


def test_nothing_to_bill_creates_no_invoice():
    company = CompanyFactory()
    assert invoice_generate(company=company, period=MARCH) is None
    assert not Invoice.objects.exists()


def test_a_month_three_times_bigger_than_the_last_is_held():
    # given February ¥199.00 issued, March with a ¥2,000 selection fee extra
    sub = SubscriptionFactory(activated_on=dt.date(2026, 2, 1))
    feb = invoice_generate(company=sub.company, period=dt.date(2026, 2, 1))
    invoice_issue(invoice=feb, now=shanghai(2026, 3, 1, 9, 0))
    SubscriptionFactory(
        company=sub.company, activated_on=MARCH, selection_fee=Decimal("2000.00")
    )

    march = invoice_issue(
        invoice=invoice_generate(company=sub.company, period=MARCH), now=ISSUE_TIME
    )

    # 199.00 + 199.00 + 2,000.00 = 2,398.00 > 3 × 199.00 = 597.00 and > 1,000
    assert march.status == Invoice.Status.DRAFT
    assert march.total == Decimal("2398.00")
    assert march.warning
    assert mail.outbox == []


def test_a_month_within_three_times_the_last_is_issued():
    sub = SubscriptionFactory(activated_on=dt.date(2026, 2, 1))
    feb = invoice_generate(company=sub.company, period=dt.date(2026, 2, 1))
    invoice_issue(invoice=feb, now=shanghai(2026, 3, 1, 9, 0))
    SubscriptionFactory(
        company=sub.company, activated_on=MARCH, selection_fee=Decimal("100.00")
    )

    march = invoice_issue(
        invoice=invoice_generate(company=sub.company, period=MARCH), now=ISSUE_TIME
    )

    # 199.00 + 199.00 + 100.00 = 498.00 ≤ 597.00: issued
    assert march.status == Invoice.Status.ISSUED
    assert march.warning == ""
