"""Properties of the pure pricing that hold for any company-month (hypothesis)."""

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from billing import pricing
from billing.pricing import AnswerIn, CompanyMonth, NumberMonth, ServiceIn, UsageIn
from billing.rating import PlanPeriod, PlanTerms, Tariff, days_in_month, month_segments

D = Decimal
CENT = D("0.01")

money = st.decimals(min_value=D("0"), max_value=D("5000"), places=2)
rates = st.decimals(min_value=D("0"), max_value=D("2"), places=4)
tax_rates = st.decimals(min_value=D("0"), max_value=D("0.2"), places=4)
months = st.builds(
    lambda y, m: dt.date(y, m, 1), st.integers(2025, 2028), st.integers(1, 12)
)


@st.composite
def plans(draw):
    term = draw(st.sampled_from([1, 12, 24, 36]))
    return PlanTerms(
        plan_id=draw(st.integers(1, 3)),
        term_months=term,
        price=draw(money),
        included_minutes=draw(st.integers(0, 30000)),
        tariff=Tariff(draw(rates), draw(rates), draw(rates)),
        name="P",
    )


@st.composite
def usage(draw, period):
    billable = draw(st.integers(0, 5000))
    kind = draw(st.sampled_from(["inbound_peak", "inbound_offpeak", "outbound"]))
    pool = 0 if kind == "outbound" else draw(st.integers(0, billable))
    late = draw(st.booleans())
    month = (period - dt.timedelta(days=1)).replace(day=1) if late else period
    return UsageIn(
        month,
        kind,
        draw(rates),
        draw(st.integers(1, 50)),
        billable,
        pool,
        billable - pool,
    )


@st.composite
def company_months(draw):
    period = draw(months)
    dim = days_in_month(period)
    numbers = []
    for i in range(draw(st.integers(0, 3))):
        plan = draw(plans())
        activated = period + dt.timedelta(days=draw(st.integers(-400, dim - 1)))
        ended = draw(
            st.one_of(
                st.none(),
                st.integers(0, 60).map(lambda d, a=activated: a + dt.timedelta(days=d)),
            )
        )
        segs = month_segments(
            periods=[PlanPeriod(plan, activated)],
            activated_on=activated,
            ended_on=ended,
            period=period,
        )
        day = st.integers(-40, 40).map(lambda d: period + dt.timedelta(days=d))
        services = [
            ServiceIn(
                s,
                f"S{s}",
                draw(money),
                draw(st.one_of(st.none(), day)),
                draw(st.one_of(st.none(), day)),
            )
            for s in range(draw(st.integers(0, 3)))
        ]
        answers = [
            AnswerIn(
                f"+86138{a:08d}",
                draw(st.one_of(st.none(), day)),
                draw(st.one_of(st.none(), day)),
            )
            for a in range(draw(st.integers(0, 4)))
        ]
        numbers.append(
            NumberMonth(
                subscription_id=i,
                number_display=f"400-810-{i:04d}",
                segments=segs,
                services=services,
                answer_numbers=answers,
                included_services={
                    plan.plan_id: frozenset(draw(st.sets(st.integers(0, 3))))
                },
                included_answer_numbers={plan.plan_id: draw(st.integers(0, 2))},
                selection_fee=draw(money),
                usage=draw(st.lists(usage(period), max_size=5)),
            )
        )
    return CompanyMonth(
        period=period,
        numbers=numbers,
        tax_rates={"basic": draw(tax_rates), "value_added": draw(tax_rates)},
        extra_answer_fee=draw(money),
    )


@settings(max_examples=150, deadline=None)
@given(company_months())
def test_total_is_the_plain_sum_of_line_amounts(month):
    inv = pricing.price_invoice(month)
    assert inv.total == sum((ln.amount for ln in inv.lines), D("0.00"))


@settings(max_examples=150, deadline=None)
@given(company_months())
def test_every_line_is_quantity_times_unit_price_rounded_once(month):
    for ln in pricing.price_invoice(month).lines:
        assert ln.amount == (ln.quantity * ln.unit_price).quantize(CENT, ROUND_HALF_UP)
        assert ln.amount >= 0
        assert ln.amount.as_tuple().exponent == -2


@settings(max_examples=150, deadline=None)
@given(company_months())
def test_vat_net_plus_tax_is_gross_and_grosses_sum_to_the_total(month):
    inv = pricing.price_invoice(month)
    for row in inv.vat:
        assert row.net + row.tax == row.gross
        assert row.tax == (row.gross * row.rate / (1 + row.rate)).quantize(
            CENT, ROUND_HALF_UP
        )
    assert sum((r.gross for r in inv.vat), D("0.00")) == inv.total


@settings(max_examples=150, deadline=None)
@given(company_months())
def test_usage_lines_keep_the_minutes_arithmetic(month):
    for ln in pricing.price_invoice(month).lines:
        if ln.kind in pricing.USAGE_KINDS:
            assert ln.pool_minutes + ln.charged_minutes == ln.billable_minutes
            assert ln.quantity == ln.charged_minutes
            assert ln.amount == (ln.charged_minutes * ln.unit_price).quantize(
                CENT, ROUND_HALF_UP
            )


@settings(max_examples=100, deadline=None)
@given(company_months())
def test_a_prorated_fee_never_exceeds_the_full_month(month):
    for number in month.numbers:
        lines = pricing.price_number(month, number)
        for ln in lines:
            if ln.kind == "plan_fee":
                assert ln.amount <= max(s.plan.price for s in number.segments)
            if ln.kind == "service" and number.services:
                assert ln.amount <= max(s.monthly_fee for s in number.services)


@settings(max_examples=100, deadline=None)
@given(company_months())
def test_lines_are_grouped_by_number(month):
    displays = [ln.number_display for ln in pricing.price_invoice(month).lines]
    assert displays == sorted(displays)
