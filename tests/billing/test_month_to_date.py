"""本月实时账单: the running month from rated calls, pools and the projection."""

import datetime as dt
from decimal import Decimal
from types import SimpleNamespace

import pytest
from django.urls import reverse
from django.utils import timezone

from billing.money import to_money
from billing.rating import days_in_month
from billing.selectors.month import project_number
from billing.services.rating import calls_rate
from tests.billing.bill_data import login
from tests.factories import (
    CallRecordFactory,
    CompanyFactory,
    PlanFactory,
    SubscriptionFactory,
    shanghai,
)


def _line(kind, billable, rate):
    return SimpleNamespace(
        kind=kind, billable_minutes=billable, unit_price=Decimal(rate)
    )


def test_projection_worked_by_hand():
    # 300 inbound minutes in 10 days → 600 more in the 20 days to come; 100
    # are left in the pool, so 500 are charged at the average inbound rate
    # (200 × 0.15 + 100 × 0.10) / 300; 30 outbound minutes → 60 more × 0.20.
    projection = project_number(
        number_display="4008000000",
        usage_lines=[
            _line("inbound_peak", 200, "0.15"),
            _line("inbound_offpeak", 100, "0.10"),
            _line("outbound", 30, "0.20"),
        ],
        days_so_far=10,
        days_to_come=20,
        pool_remaining=100,
    )

    assert projection.extra_inbound_minutes == 600
    assert projection.extra_charged_minutes == 500
    assert projection.extra_outbound_minutes == 60
    assert projection.extra_amount == Decimal("66.67") + Decimal("12.00")


def test_projection_on_the_last_day_adds_nothing():
    projection = project_number(
        number_display="4008000000",
        usage_lines=[_line("inbound_peak", 50, "0.15")],
        days_so_far=31,
        days_to_come=0,
        pool_remaining=0,
    )

    assert projection.extra_amount == Decimal("0.00")


@pytest.fixture
def running_month(company):
    today = timezone.localdate()
    first = today.replace(day=1)
    plan = PlanFactory(
        price=Decimal("199.00"),
        included_minutes=10,
        rate_inbound_peak=Decimal("0.1500"),
        rate_inbound_offpeak=Decimal("0.1500"),
    )
    sub = SubscriptionFactory(
        company=company, plan=plan, activated_on=first - dt.timedelta(days=40)
    )
    for minute in range(3):  # three calls of 4 minutes on the 1st
        CallRecordFactory(
            subscription=sub,
            start_time=shanghai(first.year, first.month, 1, 0, 10 + minute),
            duration_seconds=240,
            rated_at=None,
        )
    calls_rate(subscription=sub, period=first)
    return SimpleNamespace(sub=sub, today=today, first=first)


def test_month_to_date_shows_the_bill_so_far_and_the_pool_left(client, running_month):
    login(client, running_month.sub.company, "finance")

    response = client.get(reverse("billing:month_to_date"))

    assert response.status_code == 200
    mtd = response.context["mtd"]
    # 12 billable minutes: 10 from the pool, 2 charged × ¥0.15 = ¥0.30.
    assert mtd.total_so_far == Decimal("199.30")
    (pool,) = mtd.pools
    assert (pool.pool_total, pool.used_this_month, pool.remaining) == (10, 10, 0)
    html = response.content.decode()
    assert "¥199.30" in html
    assert "这不是正式账单" in html
    assert "预估方法" in html


def test_month_to_date_projection_scales_usage_by_days(client, running_month):
    login(client, running_month.sub.company, "owner")
    today = running_month.today
    to_come = days_in_month(today) - today.day
    # 12 minutes in today.day days; all of the extra is charged (pool empty).
    extra = -(-12 * to_come // today.day)

    mtd = client.get(reverse("billing:month_to_date")).context["mtd"]

    assert mtd.projected_total == Decimal("199.30") + to_money(extra * Decimal("0.15"))


def test_month_to_date_of_another_company_is_not_mixed_in(client, running_month):
    other = CompanyFactory(agent=running_month.sub.company.agent)
    login(client, other, "owner")

    response = client.get(reverse("billing:month_to_date"))

    assert response.status_code == 200
    assert response.context["mtd"].total_so_far == Decimal("0.00")
    assert response.context["mtd"].pools == []


@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_month_to_date_renders_in_both_languages(client, running_month, language):
    login(client, running_month.sub.company, "owner")
    client.cookies["hotline400_language"] = language

    response = client.get(reverse("billing:month_to_date"))

    assert response.status_code == 200
    assert ("本月实时账单" if language == "zh-hans" else "bill so far") in (
        response.content.decode()
    )
