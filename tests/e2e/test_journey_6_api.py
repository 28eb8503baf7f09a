"""Journey 6: the owner creates an API key in the portal and their own system
reads the bill through the read-only API with it."""

import datetime as dt
from decimal import Decimal

import pytest
from playwright.sync_api import expect

from billing.models import CompanyApiKey
from tests.e2e.helpers import customer, go_to, log_in, tr
from tests.factories import (
    InvoiceFactory,
    InvoiceLineFactory,
    UserFactory,
    issue_for_tests,
)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def api(_playwright, live_server):
    """An HTTP client with no browser cookies, as the company's ERP would be."""
    context = _playwright.request.new_context(base_url=live_server.url)
    yield context
    context.dispose()


def test_owner_creates_an_api_key_and_reads_the_invoice_through_the_api(
    page, language, screenshot, api
):
    t = lambda text, **values: tr(language, text, **values)  # noqa: E731
    owner = UserFactory(role="owner", company=customer(), full_name="李娜")
    draft = InvoiceFactory(company=owner.company, period=dt.date(2026, 10, 1))
    InvoiceLineFactory(invoice=draft, unit_price=Decimal("199.00"))
    invoice = issue_for_tests(draft)
    InvoiceFactory(period=dt.date(2026, 10, 1))  # another company's bill

    # Given the owner on their bills
    log_in(page, owner)
    go_to(page, t("Bills"))
    page.get_by_role("link", name=t("API keys")).click()
    expect(page.locator(".empty")).to_be_visible()  # no key yet, says what to do
    # When they create a key
    page.get_by_label(t("Name")).fill("ERP 对账")
    page.get_by_role("button", name=t("Create key")).click()
    # Then it is shown once, with how to use it
    key = page.locator("code.billing-key").inner_text().strip()
    assert key.startswith("h4c_")
    stored = CompanyApiKey.objects.get(company=owner.company)
    assert key not in (stored.key_hash, stored.prefix)
    screenshot("api-key")

    # When their system reads the bills with the key
    auth = {"Authorization": f"Bearer {key}"}
    listing = api.get("/api/v1/invoices/", headers=auth)
    # Then it gets only its company's invoice, and its lines
    assert listing.status == 200
    body = listing.json()
    assert [i["number"] for i in body["results"]] == [invoice.number]
    detail = api.get(f"/api/v1/invoices/{invoice.pk}/", headers=auth).json()
    assert (detail["period"], detail["total"]) == ("2026-10", "199.00")
    assert [line["amount"] for line in detail["lines"]] == ["199.00"]
    # And without the key, nothing
    assert api.get("/api/v1/invoices/").status == 401

    # When the owner revokes the key, it stops working
    page.reload()
    page.get_by_role("link", name=t("Revoke")).click()
    # after a page that says what revoking does
    expect(page.get_by_role("heading", level=1)).to_contain_text(t("Revoke"))
    assert api.get("/api/v1/invoices/", headers=auth).status == 200
    page.get_by_role("button", name=t("Revoke the key")).click()
    expect(page.locator(".badge--err")).to_be_visible()
    assert api.get("/api/v1/invoices/", headers=auth).status == 401
    screenshot("api-key-revoked")
