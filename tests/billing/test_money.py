"""billing.money: every rounding is ROUND_HALF_UP and named."""

from decimal import Decimal as D

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing.money import (
    line_amount,
    money_sum,
    round_half_up,
    to_amount4,
    to_money,
    to_rate,
    vat_split,
)


def test_to_money_rounds_half_up_not_to_even():
    # Given amounts exactly half a fen away / when rounded / then ties go up
    # (banker's rounding would give 0.12 and 0.02).
    assert to_money(D("0.125")) == D("0.13")
    assert to_money(D("0.015")) == D("0.02")
    assert to_money(D("0.0149")) == D("0.01")
    assert to_money(D("-0.125")) == D("-0.13")


def test_to_rate_keeps_four_decimals():
    assert to_rate(D("0.12345")) == D("0.1235")
    assert to_rate("0.1") == D("0.1000")
    assert to_amount4(D("1.00005")) == D("1.0001")


def test_floats_are_refused():
    with pytest.raises(TypeError):
        to_money(0.1)
    with pytest.raises(TypeError):
        to_money(True)


def test_line_amount_rounds_the_product_once():
    # 3 × 0.125 = 0.375 → 0.38 (half up)
    assert line_amount(3, D("0.125")) == D("0.38")
    # 1234 minutes × 0.1500 = 185.1 → 185.10
    assert line_amount(1234, D("0.1500")) == D("185.10")
    # 7 × 0.0714 = 0.4998 → 0.50
    assert line_amount(7, D("0.0714")) == D("0.50")


def test_vat_split_of_a_plan_fee_at_nine_percent():
    # 199.00 × 0.09 / 1.09 = 16.431192… → tax 16.43, net 199.00 − 16.43 = 182.57
    assert vat_split(D("199.00"), D("0.09")) == (D("182.57"), D("16.43"))


def test_vat_split_of_a_service_at_six_percent():
    # 20.00 × 0.06 / 1.06 = 1.132075… → tax 1.13, net 18.87
    assert vat_split(D("20.00"), D("0.06")) == (D("18.87"), D("1.13"))


def test_vat_split_rounds_a_tie_up():
    # 10.90 × 0.09 / 1.09 = 0.90 exactly; 5.45 × 0.09 / 1.09 = 0.45 exactly;
    # 1.09 × 0.09 / 1.09 = 0.09; a true tie: 0.545 × ... is not 2-decimal, so
    # take gross 0.05 at 100%: 0.05 × 1 / 2 = 0.025 → 0.03, net 0.02.
    assert vat_split(D("10.90"), D("0.09")) == (D("10.00"), D("0.90"))
    assert vat_split(D("0.05"), D("1")) == (D("0.02"), D("0.03"))


def test_vat_split_refuses_a_negative_rate():
    with pytest.raises(ValueError):
        vat_split(D("1.00"), D("-0.09"))


def test_money_sum_is_the_plain_sum():
    assert money_sum([D("0.01"), D("0.02"), D("1.10")]) == D("1.13")


cents = st.integers(min_value=0, max_value=10**9).map(lambda n: D(n) / 100)
rates = st.sampled_from([D("0.06"), D("0.09"), D("0.13"), D("0")])


@given(gross=cents, rate=rates)
def test_net_plus_tax_is_always_the_gross(gross, rate):
    net, tax = vat_split(gross, rate)
    assert net + tax == gross
    assert tax == tax.quantize(D("0.01"))
    assert 0 <= tax <= gross


@given(x=st.decimals(min_value=-(10**6), max_value=10**6, places=6))
def test_round_half_up_is_within_half_a_quantum(x):
    r = round_half_up(x, D("0.01"))
    assert abs(r - x) <= D("0.005")
