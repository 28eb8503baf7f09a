"""The calls behind a usage line: masked callers, sum check, keyset pages."""

import pytest
from django.urls import reverse
from hypothesis import given
from hypothesis import strategies as st

from billing.selectors.bills import PAGE_SIZE, mask_phone
from tests.billing.bill_data import build_bill, login
from tests.factories import CompanyFactory


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("13800138000", "138****8000"),
        ("+8613800138000", "138****8000"),
        ("008613800138000", "138****8000"),
        ("02188886666", "021****6666"),
        ("010-8888-6666", "010****6666"),
        ("95588", "***88"),
        ("", ""),
    ],
)
def test_caller_numbers_are_masked_in_the_middle(raw, shown):
    assert mask_phone(raw) == shown


@given(st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True))
def test_a_mobile_number_keeps_only_its_first_three_and_last_four_digits(number):
    masked = mask_phone(number)

    assert masked == number[:3] + "****" + number[-4:]
    assert sum(ch.isdigit() for ch in masked) == 7


def test_drilldown_lists_the_lines_calls_masked_with_the_sum_check(client, company):
    bill = build_bill(company)
    login(client, company, "finance")

    response = client.get(
        reverse("billing:line_calls", kwargs={"pk": bill.lines["peak"].pk})
    )

    assert response.status_code == 200
    html = response.content.decode()
    assert "138****8000" in html
    assert "13800138000" not in html
    calls = response.context["page"].calls
    assert [c.duration_seconds for c in calls] == [61, 120, 30]
    check = response.context["check"]
    assert check.ok
    assert (check.sums.calls, check.sums.billable_minutes) == (3, 5)
    assert (check.sums.pool_minutes, check.sums.charged_minutes) == (3, 2)
    assert check.sums.amount_rounded == bill.lines["peak"].amount
    assert "该项金额与通话合计一致" in html


def test_missed_and_other_band_calls_are_not_on_the_peak_line(client, company):
    bill = build_bill(company)
    login(client, company, "owner")

    response = client.get(
        reverse("billing:line_calls", kwargs={"pk": bill.lines["offpeak"].pk})
    )

    assert [c.duration_seconds for c in response.context["page"].calls] == [600]


def test_a_fee_line_has_no_calls_page(client, company):
    bill = build_bill(company)
    login(client, company, "owner")

    response = client.get(
        reverse("billing:line_calls", kwargs={"pk": bill.lines["plan_fee"].pk})
    )

    assert response.status_code == 404


def test_sum_check_flags_a_line_that_disagrees_with_its_calls(client, company):
    bill = build_bill(company)
    bill.calls[1].__class__.objects.filter(pk=bill.calls[1].pk).update(
        charged_minutes=2, pool_minutes=0
    )
    login(client, company, "owner")

    response = client.get(
        reverse("billing:line_calls", kwargs={"pk": bill.lines["peak"].pk})
    )

    assert not response.context["check"].ok
    assert "不一致" in response.content.decode()


def test_keyset_pages_walk_every_call_once_in_order_and_back(client, company):
    bill = build_bill(company, extra_peak_calls=2 * PAGE_SIZE + 7)
    login(client, company, "owner")
    url = reverse("billing:line_calls", kwargs={"pk": bill.lines["peak"].pk})
    expected = sorted(
        (c for c in bill.calls if c.band == "peak" and c.status == "answered"),
        key=lambda c: (c.start_time, c.call_id),
    )

    seen, pages, params = [], [], {}
    while True:
        page = client.get(url, params).context["page"]
        pages.append(page)
        seen += [c.pk for c in page.calls]
        if page.next_cursor is None:
            break
        params = {"after": page.next_cursor}
    back = client.get(url, {"before": pages[-1].calls[0].pk}).context["page"]

    assert seen == [c.pk for c in expected]
    assert [len(p.calls) for p in pages] == [PAGE_SIZE, PAGE_SIZE, 10]
    assert pages[0].is_first and not pages[1].is_first
    assert [c.pk for c in back.calls] == [c.pk for c in pages[1].calls]


def test_a_garbage_cursor_shows_the_first_page(client, company):
    bill = build_bill(company)
    login(client, company, "owner")
    url = reverse("billing:line_calls", kwargs={"pk": bill.lines["peak"].pk})

    response = client.get(url, {"after": "1 OR 1=1"})

    assert response.status_code == 200
    assert len(response.context["page"].calls) == 3


def test_another_companys_call_id_as_cursor_reveals_nothing(client, company):
    mine = build_bill(company)
    other = build_bill(CompanyFactory(agent=company.agent))
    login(client, company, "owner")
    url = reverse("billing:line_calls", kwargs={"pk": mine.lines["peak"].pk})

    response = client.get(url, {"after": other.calls[0].pk})

    pks = {c.pk for c in response.context["page"].calls}
    assert pks <= {c.pk for c in mine.calls}


def test_drilldown_query_count_is_the_same_on_a_deep_page(
    client, company, django_assert_max_num_queries
):
    bill = build_bill(company, extra_peak_calls=3 * PAGE_SIZE)
    login(client, company, "owner")
    url = reverse("billing:line_calls", kwargs={"pk": bill.lines["peak"].pk})
    first = client.get(url).context["page"]
    deep_cursor = (
        client.get(url, {"after": first.next_cursor}).context["page"].next_cursor
    )

    with django_assert_max_num_queries(10) as first_ctx:
        client.get(url)
    with django_assert_max_num_queries(10) as deep_ctx:
        client.get(url, {"after": deep_cursor})

    # The deep page reads its cursor row: one query more, whatever the depth.
    assert len(deep_ctx.captured_queries) == len(first_ctx.captured_queries) + 1


def test_every_usage_line_of_a_real_close_matches_its_calls(client, company):
    """Calls rated by the rating service, invoices built and issued by the
    invoice service (including late calls): every usage line's drill-down
    sums to the line, on the March bill and on April's late-calls line."""
    import datetime as dt
    from decimal import Decimal

    from billing.models import Invoice
    from billing.services.invoices import invoice_generate, invoice_issue
    from billing.services.rating import calls_rate
    from tests.factories import CallRecordFactory, PlanFactory, SubscriptionFactory
    from tests.factories import shanghai as sh

    plan = PlanFactory(included_minutes=5)
    sub = SubscriptionFactory(
        company=company, plan=plan, activated_on=dt.date(2026, 2, 1)
    )
    march = dt.date(2026, 3, 1)
    for start, seconds, direction, status in [
        (sh(2026, 3, 2, 9, 0), 121, "inbound", "answered"),  # 3 min, pool 3
        (sh(2026, 3, 2, 10, 0), 185, "inbound", "answered"),  # 4: pool 2, pays 2
        (sh(2026, 3, 7, 22, 0), 60, "inbound", "answered"),  # off-peak, pays 1
        (sh(2026, 3, 3, 11, 0), 30, "outbound", "answered"),  # outbound 1
        (sh(2026, 3, 4, 11, 0), 0, "inbound", "missed"),
    ]:
        CallRecordFactory(
            subscription=sub,
            start_time=start,
            duration_seconds=seconds,
            direction=direction,
            status=status,
            rated_at=None,
        )
    calls_rate(subscription=sub, period=march)
    invoice_issue(invoice=invoice_generate(company=company, period=march), force=True)
    # A late March call arrives after March was issued: April bills it.
    CallRecordFactory(
        subscription=sub,
        start_time=sh(2026, 3, 9, 9, 0),
        duration_seconds=90,
        rated_at=None,
    )
    calls_rate(subscription=sub, period=march)
    april = invoice_generate(company=company, period=dt.date(2026, 4, 1))
    invoice_issue(invoice=april, force=True)
    login(client, company, "finance")

    checks = []
    for invoice in Invoice.objects.filter(company=company).order_by("period"):
        page = client.get(reverse("billing:invoice_detail", kwargs={"pk": invoice.pk}))
        assert page.context["bill"].total == invoice.total
        for line in page.context["bill"].lines:
            if line.billable_minutes is None:
                continue
            drill = client.get(reverse("billing:line_calls", kwargs={"pk": line.pk}))
            checks.append(
                (
                    invoice.period.month,
                    line.kind,
                    line.usage_period.month,
                    drill.context["check"].ok,
                    drill.context["check"].sums.calls,
                )
            )

    assert all(ok for *_rest, ok, _n in checks), checks
    assert (4, "inbound_peak", 3, True, 1) in checks  # the late call
    assert sum(n for *_rest, n in checks) == 5  # every answered call, once
    assert Invoice.objects.get(period=march, company=company).total > Decimal("0")
