"""Hand-built bills for the bill-page tests (slot 7).

``build_bill`` makes an issued March 2026 invoice for one 400 number whose
every figure is worked out by hand from BILLING-RULES:

- package fee ¥199.00 (basic, 9%);
- IVR included in the package at ¥0.00 and call recording ¥20.00 (6%);
- vanity selection fee ¥2,000.00 (6%);
- inbound peak: calls of 61 s, 120 s and 30 s → 2 + 2 + 1 = 5 billable
  minutes; 3 minutes were left in the pool, so the first call takes 2, the
  second takes 1 and pays 1 (a split call), the third pays 1 → charged
  2 × ¥0.15 = ¥0.30;
- inbound off-peak: one call of 600 s → 10 minutes × ¥0.10 = ¥1.00;
- a missed call (listed for analytics, never billed).

Total ¥2,220.30. VAT: basic gross 200.30, tax round(200.30 × 0.09 / 1.09)
= 16.54, net 183.76; value-added gross 2,020.00, tax round(2020 × 0.06 /
1.06) = 114.34, net 1,905.66.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from billing.models import CallRecord, Invoice, InvoiceLine
from tests.factories import (
    CallRecordFactory,
    InvoiceFactory,
    InvoiceLineFactory,
    SubscriptionFactory,
    UserFactory,
    issue_for_tests,
    shanghai,
)

D = Decimal


@dataclass
class Bill:
    invoice: Invoice
    lines: dict[str, InvoiceLine]
    calls: list[CallRecord]
    subscription: object


def login(client, company, role: str):
    user = UserFactory(company=company, role=role)
    client.force_login(user)
    return user


def build_bill(company, *, extra_peak_calls: int = 0, number: str | None = None):
    """The hand-worked bill above; ``extra_peak_calls`` adds 1-minute charged
    peak calls (each +¥0.15) to grow the bill for query-count tests."""
    sub = SubscriptionFactory(
        company=company, **({"number__number": number} if number else {})
    )
    invoice = InvoiceFactory(company=company)
    peak = [
        dict(duration_seconds=61, billable_minutes=2, pool_minutes=2, charged=0),
        dict(duration_seconds=120, billable_minutes=2, pool_minutes=1, charged=1),
        dict(duration_seconds=30, billable_minutes=1, pool_minutes=0, charged=1),
    ]
    peak += [
        dict(duration_seconds=45, billable_minutes=1, pool_minutes=0, charged=1)
    ] * extra_peak_calls
    calls = []
    for i, c in enumerate(peak):
        calls.append(
            CallRecordFactory(
                subscription=sub,
                # Weekdays of March 2026 (2–6, 9–13 …) at 09:xx: peak.
                start_time=shanghai(
                    2026, 3, (2, 3, 4, 5, 6)[i % 5], 9, i % 60, i // 60 % 60
                ),
                caller_number="+8613800138000" if i else "=HYPERLINK(1)",
                caller_area="广东深圳" if i % 2 else "北京",
                duration_seconds=c["duration_seconds"],
                band="peak",
                billable_minutes=c["billable_minutes"],
                pool_minutes=c["pool_minutes"],
                charged_minutes=c["charged"],
                rate=D("0.1500"),
            )
        )
    calls.append(
        CallRecordFactory(
            subscription=sub,
            start_time=shanghai(2026, 3, 7, 21, 30),  # a Saturday evening
            caller_number="02188886666",
            caller_area="上海",
            duration_seconds=600,
            band="offpeak",
            billable_minutes=10,
            pool_minutes=0,
            charged_minutes=10,
            rate=D("0.1000"),
        )
    )
    calls.append(
        CallRecordFactory(
            subscription=sub,
            start_time=shanghai(2026, 3, 9, 12, 0),
            caller_number="13900139000",
            duration_seconds=0,
            status="missed",
            band="peak",
            billable_minutes=0,
            pool_minutes=0,
            charged_minutes=0,
        )
    )
    n_peak = 2 + extra_peak_calls
    spec = [
        ("plan_fee", "套餐月费", "basic", "0.09", 1, "月", "199.00", None),
        ("ivr", "语音导航（套餐内含）", "value_added", "0.06", 1, "月", "0", None),
        ("recording", "通话录音", "value_added", "0.06", 1, "月", "20.00", None),
        ("selection", "选号费", "value_added", "0.06", 1, "次", "2000.00", None),
        (
            "peak",
            "呼入 高峰",
            "basic",
            "0.09",
            n_peak,
            "分钟",
            "0.1500",
            (5 + extra_peak_calls, 3, n_peak),
        ),
        ("offpeak", "呼入 低峰", "basic", "0.09", 10, "分钟", "0.1000", (10, 0, 10)),
    ]
    kinds = {
        "plan_fee": "plan_fee",
        "ivr": "service",
        "recording": "service",
        "selection": "selection_fee",
        "peak": "inbound_peak",
        "offpeak": "inbound_offpeak",
    }
    lines = {}
    for pos, (key, desc, cat, rate, qty, unit, price, minutes) in enumerate(
        spec, start=1
    ):
        extra = {}
        if minutes:
            extra = dict(
                billable_minutes=minutes[0],
                pool_minutes=minutes[1],
                charged_minutes=minutes[2],
            )
        lines[key] = InvoiceLineFactory(
            invoice=invoice,
            subscription=sub,
            position=pos,
            kind=kinds[key],
            description=desc,
            tax_category=cat,
            tax_rate=D(rate),
            quantity=D(qty),
            unit=unit,
            unit_price=D(price),
            **extra,
        )
    issue_for_tests(invoice)
    for line in lines.values():
        line.refresh_from_db()
    return Bill(invoice=invoice, lines=lines, calls=calls, subscription=sub)
