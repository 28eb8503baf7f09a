"""Journey 4: agent staff close the month in the back office; the owner opens
the bill, drills into a usage line's calls, downloads the PDF and the CSVs, and
finds the bill in their mailbox with the PDF attached."""

import csv
import datetime as dt
import io
from decimal import Decimal

import pytest
from django.core import mail
from django.utils import timezone
from playwright.sync_api import expect

from billing.models import CloseRun, Invoice
from tests.billing.invoice_helpers import call
from tests.e2e.helpers import admin_log_in, customer, go_to, log_in, tr
from tests.factories import (
    AgentStaffFactory,
    PhoneNumberFactory,
    PlanFactory,
    SubscriptionFactory,
    UserFactory,
    shanghai,
)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

OCTOBER = dt.date(2026, 10, 1)


def read_csv(body: bytes) -> list[list[str]]:
    assert body.startswith(b"\xef\xbb\xbf"), "CSV without the BOM Excel needs"
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))


def download(page, link_name: str):
    with page.expect_download() as info:
        page.get_by_role("link", name=link_name).click()
    return info.value.path().read_bytes()


def test_month_is_closed_and_the_owner_checks_the_bill_its_calls_and_the_email(
    page, staff_page, language, screenshot
):
    t = lambda text, **values: tr(language, text, **values)  # noqa: E731
    company = customer(
        language=language,
        billing_email="finance@lanhai.example.cn",
    )
    owner = UserFactory(company=company, role="owner", full_name="李娜")
    staff = AgentStaffFactory(agent=company.agent, full_name="张伟")
    plan = PlanFactory(code="e2e-199", name_zh="标准套餐", name_en="Standard")
    sub = SubscriptionFactory(
        company=company,
        number=PhoneNumberFactory(number="4008100001", status="subscribed"),
        activated_on=OCTOBER,
        plan=plan,
    )
    # Three inbound peak calls (2 + 3 + 1 min, from the package) and an
    # outbound call of 2 min at ¥0.20, as the carrier reported them.
    call(sub, shanghai(2026, 10, 12, 10, 0), 90)
    call(sub, shanghai(2026, 10, 13, 11, 0), 150)
    call(sub, shanghai(2026, 10, 14, 16, 0), 60)
    call(sub, shanghai(2026, 10, 15, 9, 30), 61, direction="outbound")

    # Given agent staff starting the close of October in the back office
    admin_log_in(staff_page, staff)
    staff_page.goto("/admin/billing/closerun/start/")
    # (it proposes last month; October is the month of these calls)
    month = staff_page.get_by_label(t("Billing month"))
    last_month = timezone.localdate().replace(day=1) - dt.timedelta(days=1)
    expect(month).to_have_value(f"{last_month:%Y-%m}")
    month.fill("2026-10")
    staff_page.get_by_label(
        t("Issue each invoice that passes the sanity check")
    ).check()
    mail.outbox.clear()
    staff_page.locator("input[type=submit]").click()

    # Then the close's progress page reaches the end, one invoice issued
    staff_page.wait_for_url("**/closerun/*/progress/")
    expect(staff_page.locator("#close-progress progress")).to_have_attribute(
        "value", "100"
    )
    expect(staff_page.locator("[data-count=issued]")).to_have_text("1")
    assert CloseRun.objects.get().status == "done"
    invoice = Invoice.objects.get(company=company, period=OCTOBER)
    assert invoice.status == Invoice.Status.ISSUED
    # 199.00 package + 2 outbound minutes at 0.20
    assert invoice.total == Decimal("199.40")
    screenshot("admin-close", of=staff_page)

    # When the owner opens the bill from the list
    log_in(page, owner)
    go_to(page, t("Bills"))
    row = page.get_by_role("row").filter(has_text=invoice.number)
    screenshot("invoices")
    row.get_by_role("link", name="2026-10").click()
    expect(page.locator(".stat__value.billing-total")).to_have_text("¥199.40")
    screenshot("invoice")

    # And drills into the inbound usage line's calls
    inbound = page.locator("tr.billing-line", has_text=t("See the calls")).first
    inbound.get_by_role("link", name=t("See the calls")).click()
    page.wait_for_url("**/billing/lines/*/calls/")
    expect(page.locator(".billing-check__result")).to_contain_text(
        t("The line equals the sum of its calls.")
    )
    calls = page.locator("table.billing-calls tbody tr")
    expect(calls).to_have_count(3)
    assert "138****8000" in calls.first.inner_text()  # callers are masked
    screenshot("line-calls")
    line_csv = read_csv(download(page, t("These calls (CSV)")))
    assert len(line_csv) == 1 + 3
    page.go_back()

    # When they download the PDF and the CSVs of the bill
    pdf = download(page, t("Download PDF"))
    lines = read_csv(download(page, t("Lines (CSV)")))
    all_calls = read_csv(download(page, t("Calls (CSV)")))

    # Then each holds the bill
    assert pdf.startswith(b"%PDF")
    assert any("199.00" in cell for row in lines for cell in row)
    assert len(lines) - 1 == invoice.lines.count()
    assert len(all_calls) == 1 + 4

    # And the email with the PDF attached came to the billing address
    (email,) = [m for m in mail.outbox if "finance@lanhai.example.cn" in m.to]
    assert invoice.number in email.subject
    (attachment,) = email.attachments
    name, content, mimetype = attachment
    assert mimetype == "application/pdf" and name.endswith(".pdf")
    assert content.startswith(b"%PDF")
