"""The plan advisor picks the cheapest plan, worked out by hand."""

import datetime as dt
from decimal import Decimal

import pytest
from django.urls import reverse

from billing.advisor import company_advice, full_months
from tests.billing.bill_data import login
from tests.factories import (
    CallRecordFactory,
    CompanyFactory,
    PlanFactory,
    SubscriptionFactory,
    TermPlanFactory,
    ValueAddedServiceFactory,
    VanityGradeFactory,
    shanghai,
)

TODAY = dt.date(2026, 4, 15)  # compares January, February and March 2026


@pytest.fixture
def catalog(db):
    # A: ¥199/month, 1,000 min, peak ¥0.15 (the current plan)
    # B: ¥99/month, 200 min, peak ¥0.20
    # C: ¥3,000/36 months, 25,000 min, ¥0.12 → ¥83.33 and 694 min a month
    return {
        "A": PlanFactory(code="adv-a", price=Decimal("199.00"), included_minutes=1000),
        "B": PlanFactory(
            code="adv-b",
            price=Decimal("99.00"),
            included_minutes=200,
            rate_inbound_peak=Decimal("0.2000"),
            rate_inbound_offpeak=Decimal("0.1500"),
        ),
        "C": TermPlanFactory(code="adv-c"),
    }


def _march_calls(sub, n=5, seconds=6000):
    # Five 100-minute peak calls on Monday 2 March 2026 → 500 billable minutes.
    for i in range(n):
        CallRecordFactory(
            subscription=sub,
            start_time=shanghai(2026, 3, 2, 9 + i, 0),
            duration_seconds=seconds,
        )


def _only_catalog(catalog):
    from plans.models import Plan

    Plan.objects.exclude(pk__in=[p.pk for p in catalog.values()]).update(
        is_active=False
    )


def test_full_months_are_the_last_three_complete_months_in_service():
    assert full_months(dt.date(2025, 12, 1), None, TODAY.replace(day=1)) == (
        dt.date(2026, 1, 1),
        dt.date(2026, 2, 1),
        dt.date(2026, 3, 1),
    )
    assert full_months(dt.date(2026, 2, 2), None, TODAY.replace(day=1)) == (
        dt.date(2026, 3, 1),
    )


def test_advisor_picks_the_cheapest_plan_worked_by_hand(company, catalog):
    _only_catalog(catalog)
    sub = SubscriptionFactory(
        company=company, plan=catalog["A"], activated_on=dt.date(2025, 12, 1)
    )
    _march_calls(sub)

    (advice,) = company_advice(company=company, today=TODAY)

    totals = {r.plan.terms.plan_id: r.total for r in advice.results}
    # A: 3 × 199 = 597.00 (500 min fit in the pool)
    # B: 3 × 99 + (500 − 200) × 0.20 = 297 + 60 = 357.00
    # C: 3 × 83.33 = 249.99 (500 ≤ 694)
    assert totals == {
        catalog["A"].pk: Decimal("597.00"),
        catalog["B"].pk: Decimal("357.00"),
        catalog["C"].pk: Decimal("249.99"),
    }
    assert advice.cheapest.plan.terms.plan_id == catalog["C"].pk
    assert advice.current.plan.terms.plan_id == catalog["A"].pk
    assert advice.saving == Decimal("347.01")


def test_a_plan_below_the_vanity_minimum_is_never_recommended(company, catalog):
    _only_catalog(catalog)
    grade = VanityGradeFactory(min_monthly=Decimal("90.00"))
    sub = SubscriptionFactory(
        company=company,
        plan=catalog["A"],
        activated_on=dt.date(2025, 12, 1),
        grade=grade,
    )
    _march_calls(sub)

    (advice,) = company_advice(company=company, today=TODAY)

    assert advice.cheapest.plan.terms.plan_id == catalog["B"].pk
    assert advice.saving == Decimal("240.00")


def test_a_service_included_in_a_plan_is_free_under_it(company, catalog):
    _only_catalog(catalog)
    ivr = ValueAddedServiceFactory(code="adv-ivr", monthly_fee=Decimal("50.00"))
    catalog["B"].included_services.add(ivr)
    SubscriptionFactory(
        company=company,
        plan=catalog["A"],
        activated_on=dt.date(2025, 12, 1),
        services=[ivr],
    )

    (advice,) = company_advice(company=company, today=TODAY)

    totals = {r.plan.terms.plan_id: r.total for r in advice.results}
    # No calls: A 3 × (199 + 50), B 3 × 99 (IVR included), C 3 × (83.33 + 50).
    assert totals[catalog["A"].pk] == Decimal("747.00")
    assert totals[catalog["B"].pk] == Decimal("297.00")
    assert totals[catalog["C"].pk] == Decimal("399.99")


def test_a_young_number_has_no_advice_yet(company, catalog):
    SubscriptionFactory(
        company=company, plan=catalog["A"], activated_on=dt.date(2026, 4, 2)
    )

    (advice,) = company_advice(company=company, today=TODAY)

    assert advice.months == ()
    assert advice.cheapest is None


@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_advisor_page_renders_for_finance(client, company, catalog, language):
    SubscriptionFactory(
        company=company, plan=catalog["A"], activated_on=dt.date(2025, 1, 1)
    )
    login(client, company, "finance")
    client.cookies["hotline400_language"] = language

    response = client.get(reverse("billing:advisor"))

    assert response.status_code == 200
    html = response.content.decode()
    assert ("套餐顾问" if language == "zh-hans" else "Plan advisor") in html
    assert catalog["C"].name_zh in html or catalog["C"].name_en in html


def test_advisor_shows_only_the_users_numbers(client, company, catalog):
    sub = SubscriptionFactory(
        company=company, plan=catalog["A"], activated_on=dt.date(2025, 1, 1)
    )
    other = CompanyFactory(agent=company.agent)
    login(client, other, "owner")

    response = client.get(reverse("billing:advisor"))

    assert response.context["advice"] == []
    assert sub.number.number not in response.content.decode()
