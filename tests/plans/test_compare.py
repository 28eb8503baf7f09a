"""The package comparison page: every active package side by side."""

from decimal import Decimal

import pytest
from django.urls import reverse

from plans.pricing import cost_per_minute
from tests.factories import PlanFactory, TermPlanFactory, ValueAddedServiceFactory


@pytest.fixture
def plans(db):
    ivr = ValueAddedServiceFactory(code="ivr", name_zh="语音导航", name_en="IVR")
    monthly = PlanFactory(
        code="standard",
        name_zh="标准版",
        name_en="Standard",
        price=Decimal("299.00"),
        included_minutes=2000,
        included_answer_numbers=3,
    )
    monthly.included_services.set([ivr])
    term = TermPlanFactory(code="term-3y", name_zh="三年套餐", name_en="Three years")
    retired = PlanFactory(code="old", name_en="Retired plan", is_active=False)
    return monthly, term, retired


def test_cost_per_included_minute():
    assert cost_per_minute(Decimal("3000.00"), 25000) == Decimal("0.1200")
    assert cost_per_minute(Decimal("299.00"), 2000) == Decimal("0.1495")
    assert cost_per_minute(Decimal("99.00"), 0) is None


def test_active_plans_side_by_side_with_derived_figures(client, plans):
    client.cookies["hotline400_language"] = "en"

    response = client.get(reverse("plans:compare"))

    body = response.content.decode()
    assert response.status_code == 200
    assert "Standard" in body and "Three years" in body
    assert "Retired plan" not in body
    assert "¥83.33" in body  # 3000 / 36 per month
    assert "¥0.1200" in body  # 3000 / 25,000 minutes
    assert "¥0.1495" in body  # 299 / 2,000 minutes
    assert "IVR" in body
    assert "25,000 for the term" in body


def test_compare_scrolls_sideways_on_a_phone(client, plans):
    body = client.get(reverse("plans:compare")).content.decode()

    assert 'class="table-wrap compare-wrap"' in body
    assert 'scope="row"' in body


def test_compare_renders_in_chinese_by_default(client, plans):
    response = client.get(reverse("plans:compare"))

    assert response["Content-Language"] == "zh-hans"
    assert "标准版" in response.content.decode()
