"""The overview a company user lands on after logging in."""

import datetime as dt

import pytest
from django.urls import reverse

from tests.factories import SubscriptionFactory, UserFactory


@pytest.fixture
def subscription(company):
    return SubscriptionFactory(company=company, activated_on=dt.date(2026, 1, 1))


def test_owner_sees_their_numbers_and_this_months_bill(client, owner, subscription):
    client.force_login(owner)

    response = client.get(reverse("dashboard"))

    assert response.status_code == 200
    body = response.content.decode()
    assert subscription.number.display in body
    assert reverse("billing:month_to_date") in body
    assert response.context["active_count"] == 1


def test_member_sees_numbers_but_no_bills(client, company, subscription):
    member = UserFactory(company=company, role="member")
    client.force_login(member)

    response = client.get(reverse("dashboard"))

    assert subscription.number.display in response.content.decode()
    assert "mtd" not in response.context
    assert "latest_invoices" not in response.context


def test_company_without_numbers_is_told_how_to_get_one(client, owner):
    client.force_login(owner)

    response = client.get(reverse("dashboard"), HTTP_ACCEPT_LANGUAGE="zh-hans")

    assert response.context["subscriptions"] == []
    assert "您还没有 400 号码" in response.content.decode()


def test_other_companies_numbers_never_show(client, owner):
    stranger = SubscriptionFactory()
    client.force_login(owner)

    response = client.get(reverse("dashboard"))

    assert stranger.number.display not in response.content.decode()


def test_agent_staff_land_in_the_back_office(client, agent_staff):
    client.force_login(agent_staff)

    response = client.get(reverse("dashboard"))

    assert response.status_code == 302
    assert response["Location"] == reverse("admin:index")
