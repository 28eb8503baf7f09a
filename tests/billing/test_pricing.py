"""The pure pricing of an invoice (billing.pricing), checked by hand."""

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import translation

from billing import pricing
from billing.pricing import AnswerIn, CompanyMonth, NumberMonth, ServiceIn, UsageIn
from billing.rating import PlanPeriod, PlanTerms, Tariff, month_segments

D = Decimal
FEB = dt.date(2026, 2, 1)  # 28 days
APRIL = dt.date(2026, 4, 1)  # 30 days
TAX = {"basic": D("0.09"), "value_added": D("0.06")}

MONTHLY = PlanTerms(
    plan_id=1,
    term_months=1,
    price=D("199.00"),
    included_minutes=1000,
    tariff=Tariff(D("0.15"), D("0.10"), D("0.20")),
    name="Business 199",
)
TERM = PlanTerms(
    plan_id=2,
    term_months=12,
    price=D("1200.00"),
    included_minutes=12000,
    tariff=Tariff(D("0.12"), D("0.12"), D("0.20")),
    name="1200/1y",
)


@pytest.fixture(autouse=True)
def _english():
    with translation.override("en"):
        yield


def segments(plan, activated, period, ended=None):
    return month_segments(
        periods=[PlanPeriod(plan, activated)],
        activated_on=activated,
        ended_on=ended,
        period=period,
    )


def number(segs, **kw):
    return NumberMonth(
        subscription_id=1, number_display="400-810-0001", segments=segs, **kw
    )


EXTRA_FEE = D("10.00")


def price(*numbers, period=APRIL, fee=EXTRA_FEE):
    return pricing.price_invoice(
        CompanyMonth(
            period=period, numbers=numbers, tax_rates=TAX, extra_answer_fee=fee
        )
    )


def test_number_ended_mid_month_pays_its_days():
    # April (30 days), ended 04-12: 12 active days. 199 × 12 / 30 = 79.60
    inv = price(
        number(
            segments(MONTHLY, dt.date(2025, 1, 1), APRIL, ended=dt.date(2026, 4, 12))
        )
    )
    (line,) = inv.lines
    assert (line.kind, line.quantity, line.unit_price, line.amount) == (
        "plan_fee",
        D(1),
        D("79.60"),
        D("79.60"),
    )
    assert "12 of 30 days" in line.description
    assert (line.period_start, line.period_end) == (APRIL, dt.date(2026, 4, 12))


def test_service_switched_on_mid_month_is_prorated_and_half_up():
    # February (28 days), recording ¥25 on from 02-15: 14 days.
    # 25 × 14 / 28 = 12.50 exactly; ¥19.99 from 02-20: 9 days,
    # 19.99 × 9 / 28 = 6.4253… → 6.43
    segs = segments(MONTHLY, dt.date(2025, 1, 1), FEB)
    inv = price(
        number(
            segs,
            services=[
                ServiceIn("rec", "Recording", D("25.00"), dt.date(2026, 2, 15)),
                ServiceIn("vm", "Voicemail", D("19.99"), dt.date(2026, 2, 20)),
            ],
        ),
        period=FEB,
    )
    amounts = [(ln.kind, ln.amount) for ln in inv.lines]
    assert amounts == [
        ("plan_fee", D("199.00")),
        ("service", D("12.50")),
        ("service", D("6.43")),
    ]
    assert inv.total == D("217.93")


def test_included_service_is_listed_at_zero():
    segs = segments(MONTHLY, dt.date(2025, 1, 1), APRIL)
    inv = price(
        number(
            segs,
            services=[ServiceIn(7, "IVR", D("30.00"))],
            included_services={1: frozenset({7})},
        )
    )
    line = inv.lines[1]
    assert (line.kind, line.amount, line.tax_category) == (
        "service",
        D("0.00"),
        "value_added",
    )
    assert "included" in line.description


def test_extra_answering_numbers_change_mid_month():
    # April: 2 bound all month, a 3rd from 04-21 (10 days); 1 included.
    # extra-number-days = 1 × 30 + 1 × 10 = 40; 10 × 40 / 30 = 13.333… → 13.33
    segs = segments(MONTHLY, dt.date(2025, 1, 1), APRIL)
    inv = price(
        number(
            segs,
            answer_numbers=[
                AnswerIn("+8613800000001"),
                AnswerIn("+8613800000002"),
                AnswerIn("+8613800000003", dt.date(2026, 4, 21)),
            ],
            included_answer_numbers={1: 1},
        )
    )
    line = inv.lines[1]
    assert (line.kind, line.quantity, line.unit_price, line.amount) == (
        "extra_answer",
        D(1),
        D("13.33"),
        D("13.33"),
    )


def test_within_included_answering_numbers_costs_nothing():
    segs = segments(MONTHLY, dt.date(2025, 1, 1), APRIL)
    inv = price(
        number(
            segs,
            answer_numbers=[AnswerIn("+8613800000001")],
            included_answer_numbers={1: 1},
        )
    )
    assert [ln.kind for ln in inv.lines] == ["plan_fee"]


def test_term_price_only_in_the_month_the_term_starts():
    # A 12-month term from 2026-04-15: April bills 1200.00; the March 2027
    # month still inside the term shows 0.00; April 2027 (new term from
    # 04-15) bills 1200.00 again.
    start = dt.date(2026, 4, 15)
    april = price(number(segments(TERM, start, APRIL)))
    march_next = price(
        number(segments(TERM, start, dt.date(2027, 3, 1))), period=dt.date(2027, 3, 1)
    )
    april_next = price(
        number(segments(TERM, start, dt.date(2027, 4, 1))), period=dt.date(2027, 4, 1)
    )
    assert [(ln.kind, ln.amount) for ln in april.lines] == [
        ("term_price", D("1200.00"))
    ]
    assert [(ln.kind, ln.amount) for ln in march_next.lines] == [
        ("term_price", D("0.00"))
    ]
    # April 2027: the old term's last days (04-01..04-14) at 0.00, then the new
    # term's price.
    assert [(ln.kind, ln.amount) for ln in april_next.lines] == [
        ("term_price", D("0.00")),
        ("term_price", D("1200.00")),
    ]


def test_usage_lines_in_order_with_late_calls_last():
    segs = segments(MONTHLY, dt.date(2025, 1, 1), APRIL)
    usage = [
        UsageIn(dt.date(2026, 3, 1), "inbound_peak", D("0.15"), 2, 7, 0, 7),
        UsageIn(APRIL, "outbound", D("0.20"), 1, 3, 0, 3),
        UsageIn(APRIL, "inbound_offpeak", D("0.10"), 4, 40, 40, 0),
        UsageIn(APRIL, "inbound_peak", D("0.15"), 9, 1013, 960, 53),
        UsageIn(APRIL, "inbound_peak", D("0.15"), 3, 0, 0, 0),  # missed only
    ]
    inv = price(number(segs, usage=usage))
    rows = [
        (ln.kind, ln.usage_period, ln.charged_minutes, ln.amount)
        for ln in inv.lines[1:]
    ]
    assert rows == [
        ("inbound_peak", APRIL, 53, D("7.95")),  # 53 × 0.15
        ("inbound_offpeak", APRIL, 0, D("0.00")),
        ("outbound", APRIL, 3, D("0.60")),
        ("inbound_peak", dt.date(2026, 3, 1), 7, D("1.05")),  # late: 7 × 0.15
    ]
    assert inv.lines[-1].description.startswith(
        "Late calls from 2026-03: Inbound calls, peak"
    )
    assert inv.total == D("199.00") + D("7.95") + D("0.60") + D("1.05")


def test_usage_minutes_must_add_up():
    segs = segments(MONTHLY, dt.date(2025, 1, 1), APRIL)
    bad = UsageIn(APRIL, "inbound_peak", D("0.15"), 1, 10, 5, 4)
    with pytest.raises(pricing.PricingError):
        price(number(segs, usage=[bad]))


def test_vat_table_and_total_by_hand():
    # selection fee 888.00 (6%) + plan 199.00 (9%)
    # basic: 199.00 × 0.09 / 1.09 = 16.4311… → 16.43, net 182.57
    # value-added: 888.00 × 0.06 / 1.06 = 50.2641… → 50.26, net 837.74
    segs = segments(MONTHLY, dt.date(2025, 1, 1), APRIL)
    inv = price(number(segs, selection_fee=D("888.00")))
    assert [(r.category, r.gross, r.tax, r.net) for r in inv.vat] == [
        ("basic", D("199.00"), D("16.43"), D("182.57")),
        ("value_added", D("888.00"), D("50.26"), D("837.74")),
    ]
    assert inv.total == D("1087.00")


def test_numbers_are_grouped_in_number_order():
    segs = segments(MONTHLY, dt.date(2025, 1, 1), APRIL)
    second = NumberMonth(
        subscription_id=2, number_display="400-810-0009", segments=segs
    )
    first = NumberMonth(subscription_id=3, number_display="400-810-0002", segments=segs)
    inv = price(second, first)
    assert [ln.number_display for ln in inv.lines] == ["400-810-0002", "400-810-0009"]


def test_missing_tax_rate_is_refused():
    segs = segments(MONTHLY, dt.date(2025, 1, 1), APRIL)
    with pytest.raises(pricing.PricingError):
        pricing.price_invoice(
            CompanyMonth(
                period=APRIL,
                numbers=[number(segs)],
                tax_rates={"value_added": D("0.06")},
            )
        )
