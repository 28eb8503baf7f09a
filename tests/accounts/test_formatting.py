from decimal import Decimal

import pytest

from accounts.templatetags.portal import money, number400, rate


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (Decimal("1234.5"), "¥1,234.50"),
        (Decimal("0.005"), "¥0.01"),
        (Decimal("-12"), "-¥12.00"),
        (Decimal("1000000"), "¥1,000,000.00"),
    ],
)
def test_money_is_shown_as_chinese_yuan(value, shown):
    assert money(value) == shown


def test_rate_keeps_four_decimals():
    assert rate(Decimal("0.12")) == "¥0.1200"


@pytest.mark.parametrize("raw", ["4008108888", "400-810-8888", "400 810 8888"])
def test_400_numbers_are_shown_with_dashes(raw):
    assert number400(raw) == "400-810-8888"
