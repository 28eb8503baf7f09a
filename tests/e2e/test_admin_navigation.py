"""Agent staff find a customer from a 400 number or an invoice number and move
between the company, its numbers and its bills in the back office."""

import datetime as dt

import pytest
from playwright.sync_api import expect

from tests.e2e.helpers import admin_log_in, tr
from tests.factories import (
    AgentStaffFactory,
    CompanyFactory,
    InvoiceFactory,
    InvoiceLineFactory,
    PhoneNumberFactory,
    SubscriptionFactory,
    issue_for_tests,
)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def search(page, text: str) -> None:
    page.locator("#searchbar").fill(text)
    page.locator("#changelist-search [type=submit]").click()


def test_staff_find_a_company_by_number_and_follow_links_to_its_numbers_and_bills(
    staff_page, language, screenshot
):
    page = staff_page
    company = CompanyFactory(name="深圳市蓝海科技有限公司")
    CompanyFactory(agent=company.agent, name="广州市白云物流有限公司")
    staff = AgentStaffFactory(agent=company.agent)
    sub = SubscriptionFactory(
        company=company,
        number=PhoneNumberFactory(number="4008100001", status="subscribed"),
    )
    draft = InvoiceFactory(company=company, period=dt.date(2026, 10, 1))
    InvoiceLineFactory(invoice=draft, subscription=sub)
    invoice = issue_for_tests(draft, number="HL-2026-000123")

    admin_log_in(page, staff)
    # When staff search the companies by a 400 number, then by an invoice number
    page.goto("/admin/accounts/company/")
    rows = page.locator("#result_list tbody tr")
    expect(rows).to_have_count(2)
    search(page, "400-810-0001")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(company.name)
    search(page, invoice.number)
    expect(rows).to_have_count(1)
    screenshot("admin-company-search", of=page)

    # Then the company's row leads to its numbers …
    rows.first.get_by_role("link", name=tr(language, "numbers"), exact=True).click()
    numbers = page.locator("#result_list tbody tr")
    expect(numbers).to_have_count(1)
    expect(numbers.first).to_contain_text("400-810-0001")
    # … each number to its bills …
    numbers.first.get_by_role("link", name=tr(language, "bills")).click()
    bills = page.locator("#result_list tbody tr")
    expect(bills).to_have_count(1)
    expect(bills.first).to_contain_text(invoice.number)
    # … and each bill back to the company
    bills.first.get_by_role("link", name=company.name).click()
    expect(page.locator("#id_name")).to_have_value(company.name)

    # And the bills are found by the number as people write it
    page.goto("/admin/billing/invoice/")
    search(page, "400 810 0001")
    expect(page.locator("#result_list tbody tr")).to_have_count(1)
    search(page, "400-999-0000")
    expect(page.locator("#result_list")).to_have_count(0)
