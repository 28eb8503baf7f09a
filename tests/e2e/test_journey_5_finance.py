"""Journey 5: the finance user reads this month's bill so far, the call charts
and the plan advisor's recommendation; a member user cannot see bills."""

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from billing.services.rating import calls_rate
from tests.billing.invoice_helpers import call
from tests.e2e.helpers import customer, go_to, log_in, tr
from tests.factories import (
    PhoneNumberFactory,
    PlanFactory,
    SubscriptionFactory,
    UserFactory,
    shanghai,
)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

BILL_PAGES = ("This month's bill", "Bills", "Call analytics", "Plan advisor")


def months_before(first: dt.date, n: int) -> list[dt.date]:
    months = []
    for _ in range(n):
        first = (first - dt.timedelta(days=1)).replace(day=1)
        months.append(first)
    return months


@pytest.fixture
def company_with_history():
    """A ¥199 package since five months ago, used ~100 minutes a month: the
    ¥99 package with 200 minutes would have been cheaper."""
    company = customer()
    current = PlanFactory(
        code="std", name_zh="标准套餐", name_en="Standard", included_minutes=1000
    )
    PlanFactory(
        code="lite",
        name_zh="轻享套餐",
        name_en="Lite",
        price=Decimal("99.00"),
        included_minutes=200,
        rate_inbound_peak=Decimal("0.2000"),
    )
    this_month = timezone.localdate().replace(day=1)
    history = months_before(this_month, 5)
    sub = SubscriptionFactory(
        company=company,
        number=PhoneNumberFactory(number="4008100001", status="subscribed"),
        activated_on=history[-1],
        plan=current,
    )
    for month in history[:3]:
        for day in range(5):  # five 20-minute calls on weekday mornings
            call(sub, shanghai(month.year, month.month, 3 + day, 10, 0), 1200)
        calls_rate(subscription=sub, period=month)
    # This month: answered and missed calls from several areas.
    for day, hour, seconds, answered in [
        (1, 10, 125, True),
        (1, 21, 40, True),
        (2, 11, 0, False),
        (2, 15, 300, True),
    ]:
        day_call = call(
            sub,
            shanghai(this_month.year, this_month.month, day, hour, 0),
            seconds,
            answered=answered,
        )
        day_call.caller_area = "北京" if hour > 12 else "广东深圳"
        day_call.save(update_fields=["caller_area"])
    calls_rate(subscription=sub, period=this_month)
    return company


def test_finance_reads_the_running_bill_charts_and_advice_members_see_no_bills(
    page, language, screenshot, company_with_history
):
    t = lambda text, **values: tr(language, text, **values)  # noqa: E731
    finance = UserFactory(
        company=company_with_history, role="finance", full_name="王芳"
    )
    member = UserFactory(company=company_with_history, role="member")
    this_month = timezone.localdate().replace(day=1)

    # Given the finance user logged in
    log_in(page, finance)
    # When they open this month's bill so far
    go_to(page, t("This month's bill"))
    # Then it shows the running total and the included minutes left
    expect(page.locator("h1")).to_contain_text(f"{this_month:%Y-%m}")
    so_far = page.locator(".billing-so-far").inner_text()
    assert so_far.startswith("¥199.")  # package + nothing beyond the pool
    expect(page.locator("#pool-h")).to_have_text(t("Included minutes left"))
    screenshot("month-to-date")

    # When they open the call analytics
    go_to(page, t("Call analytics"))
    # Then the charts are drawn from the page itself (SVG, no CDN), each
    # with a text alternative and a table
    charts = page.locator("figure.chart-figure svg")
    expect(charts).to_have_count(4)
    for i in range(4):
        label = (
            charts.nth(i).get_attribute("aria-label")
            or charts.nth(i).locator("title").first.text_content()
        )
        assert label
    stats = page.locator(".stat__value")
    expect(stats.nth(0)).to_have_text("4")  # inbound calls
    expect(stats.nth(2)).to_have_text("1")  # missed
    assert not [
        url
        for url in page.evaluate(
            "performance.getEntriesByType('resource').map(e => e.name)"
        )
        if not url.startswith(page.url.split("/billing/")[0])
    ]
    screenshot("analytics")

    # When they open the plan advisor
    go_to(page, t("Plan advisor"))
    # Then it recommends the cheaper package with the saving over 3 months
    advice = page.locator(".notice--success")
    lite = "轻享套餐" if language == "zh-hans" else "Lite"
    expect(advice).to_contain_text(lite)
    expect(advice).to_contain_text("¥300.00")
    screenshot("advisor")

    # When a member (read-only) user logs in instead
    page.context.clear_cookies()
    page.context.add_cookies(
        [{"name": "hotline400_language", "value": language, "url": page.url}]
    )
    log_in(page, member)
    # Then no bill page is in the navigation, and their addresses say not found
    nav = page.locator("nav.mainnav").inner_text()
    for label in BILL_PAGES:
        assert t(label) not in nav.split("\n")
    for path in ("/billing/this-month/", "/billing/invoices/", "/billing/analytics/"):
        assert page.goto(path).status == 404
    # … in the portal's own words, with a way back
    assert page.goto("/billing/advisor/").status == 404
    expect(page.locator("h1")).to_have_text(t("Page not found"))
    screenshot("member-no-bills")
    page.get_by_role("link", name=t("Back to the overview")).click()
    expect(page.locator("h1")).to_contain_text(company_with_history.name)
