"""The invoice list and the invoice page a customer reads."""

import re

import pytest
from django.urls import reverse

from tests.billing.bill_data import build_bill, login
from tests.factories import CompanyFactory, InvoiceFactory


@pytest.fixture
def bill(company):
    return build_bill(company)


def _text(response) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


def test_finance_sees_the_invoice_list_with_status_total_and_due_date(client, bill):
    login(client, bill.invoice.company, "finance")

    response = client.get(reverse("billing:invoice_list"))

    assert response.status_code == 200
    text = _text(response)
    assert bill.invoice.number in text
    assert "¥2,220.30" in text
    assert bill.invoice.due_date.strftime("%Y-%m-%d") in text
    assert "未付款" in text or "待付款" in text


def test_member_gets_404_for_every_bill_page(client, bill):
    login(client, bill.invoice.company, "member")
    urls = [
        reverse("billing:invoice_list"),
        reverse("billing:invoice_detail", kwargs={"pk": bill.invoice.pk}),
        reverse("billing:invoice_lines_csv", kwargs={"pk": bill.invoice.pk}),
        reverse("billing:invoice_calls_csv", kwargs={"pk": bill.invoice.pk}),
        reverse("billing:line_calls", kwargs={"pk": bill.lines["peak"].pk}),
        reverse("billing:month_to_date"),
        reverse("billing:analytics"),
        reverse("billing:advisor"),
        reverse("billing:api_keys"),
    ]

    statuses = {url: client.get(url).status_code for url in urls}

    assert set(statuses.values()) == {404}, statuses


def test_empty_list_says_what_to_do_next(client, company):
    login(client, company, "owner")

    response = client.get(reverse("billing:invoice_list"))

    assert response.status_code == 200
    assert reverse("billing:month_to_date") in response.content.decode()
    assert "还没有账单" in response.content.decode()


def test_drafts_are_not_shown_to_customers(client, company):
    draft = InvoiceFactory(company=company)
    login(client, company, "owner")

    listing = client.get(reverse("billing:invoice_list"))
    page = client.get(reverse("billing:invoice_detail", kwargs={"pk": draft.pk}))

    assert reverse("billing:invoice_detail", kwargs={"pk": draft.pk}) not in (
        listing.content.decode()
    )
    assert page.status_code == 404


def test_invoice_page_shows_every_line_vat_and_total_as_on_the_invoice(client, bill):
    login(client, bill.invoice.company, "finance")

    response = client.get(
        reverse("billing:invoice_detail", kwargs={"pk": bill.invoice.pk})
    )

    assert response.status_code == 200
    text = _text(response)
    for line in bill.lines.values():
        assert line.description in text
    # Seller and buyer blocks from the copied fields.
    assert bill.invoice.seller_name in text
    assert bill.invoice.buyer_name in text
    assert bill.invoice.buyer_uscc in text
    # Included service at ¥0.00, split-call arithmetic of the peak line.
    assert "¥0.00" in text
    assert re.search(
        r"¥0\.1500</td> <td class=\"num\">5</td> "
        r"<td class=\"num\">3</td> <td class=\"num\">2</td> "
        r"<td class=\"money\">¥0\.30</td>",
        text,
    )
    # VAT table worked out by hand (see bill_data).
    for figure in (
        "¥183.76",
        "¥16.54",
        "¥200.30",
        "¥1,905.66",
        "¥114.34",
        "¥2,020.00",
        "¥2,220.30",
    ):
        assert figure in text, figure
    assert "账单是怎样计算的" in text


def test_numbers_on_the_page_equal_the_stored_lines(client, bill):
    login(client, bill.invoice.company, "owner")

    response = client.get(
        reverse("billing:invoice_detail", kwargs={"pk": bill.invoice.pk})
    )
    view = response.context["bill"]

    assert [ln.pk for ln in view.lines] == [ln.pk for ln in bill.lines.values()]
    assert (
        view.total == bill.invoice.total == sum(ln.amount for ln in bill.lines.values())
    )
    assert sum(r.gross for r in view.vat) == view.total
    assert all(r.net + r.tax == r.gross for r in view.vat)


def test_usage_lines_link_to_their_calls_and_fee_lines_do_not(client, bill):
    login(client, bill.invoice.company, "owner")

    html = client.get(
        reverse("billing:invoice_detail", kwargs={"pk": bill.invoice.pk})
    ).content.decode()

    assert reverse("billing:line_calls", kwargs={"pk": bill.lines["peak"].pk}) in html
    assert (
        reverse("billing:line_calls", kwargs={"pk": bill.lines["offpeak"].pk}) in html
    )
    assert (
        reverse("billing:line_calls", kwargs={"pk": bill.lines["plan_fee"].pk})
        not in html
    )


@pytest.mark.parametrize(
    ("language", "phrase"),
    [("zh-hans", "按400号码列出的费用"), ("en", "Charges by 400 number")],
)
def test_invoice_page_renders_in_chinese_and_english(client, bill, language, phrase):
    login(client, bill.invoice.company, "owner")
    client.cookies["hotline400_language"] = language

    response = client.get(
        reverse("billing:invoice_detail", kwargs={"pk": bill.invoice.pk})
    )

    assert response.status_code == 200
    assert phrase in response.content.decode()


def test_another_companys_invoice_is_404_and_unchanged(client, bill):
    other = CompanyFactory(agent=bill.invoice.company.agent)
    login(client, other, "owner")
    before = (bill.invoice.status, bill.invoice.total)

    urls = [
        reverse("billing:invoice_detail", kwargs={"pk": bill.invoice.pk}),
        reverse("billing:invoice_pdf", kwargs={"pk": bill.invoice.pk}),
        reverse("billing:invoice_lines_csv", kwargs={"pk": bill.invoice.pk}),
        reverse("billing:invoice_calls_csv", kwargs={"pk": bill.invoice.pk}),
        reverse("billing:line_calls", kwargs={"pk": bill.lines["peak"].pk}),
        reverse("billing:line_calls_csv", kwargs={"pk": bill.lines["peak"].pk}),
    ]
    statuses = [client.get(url).status_code for url in urls]

    assert statuses == [404] * len(urls)
    bill.invoice.refresh_from_db()
    assert (bill.invoice.status, bill.invoice.total) == before
    assert bill.invoice.pk not in [
        i.pk for i in client.get(reverse("billing:invoice_list")).context["invoices"]
    ]


def test_invoice_page_query_count_does_not_grow_with_lines_or_calls(
    client, company, django_assert_max_num_queries
):
    small = build_bill(company)
    big_company = CompanyFactory(agent=company.agent)
    big = build_bill(big_company, extra_peak_calls=40)
    login(client, company, "owner")
    url_small = reverse("billing:invoice_detail", kwargs={"pk": small.invoice.pk})
    client.get(url_small)  # warm the catalog row and the session

    with django_assert_max_num_queries(8) as small_ctx:
        client.get(url_small)
    client.logout()
    login(client, big_company, "owner")
    url_big = reverse("billing:invoice_detail", kwargs={"pk": big.invoice.pk})
    client.get(url_big)
    with django_assert_max_num_queries(8) as big_ctx:
        client.get(url_big)

    assert len(small_ctx.captured_queries) == len(big_ctx.captured_queries)


@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_every_bill_page_renders_in_both_languages(client, bill, language):
    login(client, bill.invoice.company, "owner")
    client.cookies["hotline400_language"] = language
    urls = [
        reverse("billing:invoice_list"),
        reverse("billing:invoice_detail", kwargs={"pk": bill.invoice.pk}),
        reverse("billing:line_calls", kwargs={"pk": bill.lines["peak"].pk}),
        reverse("billing:month_to_date"),
        reverse("billing:analytics"),
        reverse("billing:advisor"),
        reverse("billing:api_keys"),
    ]

    responses = [client.get(url) for url in urls]

    assert [r.status_code for r in responses] == [200] * len(urls)
    assert {r["Content-Language"] for r in responses} == {language}
    marker = "账单" if language == "zh-hans" else "Bills"
    assert all(marker in r.content.decode() for r in responses)
