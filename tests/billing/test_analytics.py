"""Usage analytics: SQL aggregates and server-rendered SVG charts."""

import re
from decimal import Decimal

import pytest
from django.urls import reverse

from billing.charts import Series, heatmap, stacked_bars
from billing.selectors.usage import usage_summary
from tests.billing.bill_data import build_bill, login
from tests.factories import CompanyFactory

MARCH = {"month": "2026-03"}


def test_summary_counts_worked_by_hand(company):
    # bill_data: peak calls Mon 2 09:00, Tue 3 09:01, Wed 4 09:02, off-peak
    # Sat 7 21:30, a missed call Mon 9 12:00 (all Beijing time).
    build_bill(company)
    from datetime import date

    summary = usage_summary(company=company, period=date(2026, 3, 1))

    assert (summary.calls, summary.answered, summary.missed) == (5, 4, 1)
    assert summary.miss_rate == Decimal("20.0")
    assert summary.minutes == 15
    assert len(summary.days) == 31
    assert [d.calls for d in summary.days[:9]] == [0, 1, 1, 1, 0, 0, 1, 0, 1]
    assert summary.heat[0][9] == 1 and summary.heat[0][12] == 1
    assert summary.heat[5][21] == 1
    assert sum(map(sum, summary.heat)) == 5
    assert {a.area: a.calls for a in summary.areas} == {
        "北京": 2,
        "广东深圳": 2,
        "上海": 1,
    }
    (number,) = summary.numbers
    assert (number.inbound_minutes, number.outbound_minutes) == (15, 0)


def test_analytics_page_draws_accessible_svg_charts_and_tables(client, company):
    build_bill(company)
    login(client, company, "finance")

    response = client.get(reverse("billing:analytics"), MARCH)

    assert response.status_code == 200
    html = response.content.decode()
    svgs = re.findall(r"<svg.*?</svg>", html, flags=re.S)
    assert len(svgs) == 4
    for svg in svgs:
        assert 'role="img"' in svg and "<title" in svg and "<desc" in svg
        assert "style=" not in svg  # the CSP forbids inline styles
    assert "漏接率" in html and "20.0%" in html
    assert html.count("<table") >= 4  # every chart has its table
    # No chart script: only the portal's form helper (base.html) is loaded.
    assert html.count("<script") == html.count('<script src="/static/js/busy.js"')


def test_missed_calls_differ_by_pattern_not_only_colour():
    svg = stacked_bars(
        ["1", "2"],
        [Series("answered", [3, 1]), Series("missed", [1, 2], hatched=True)],
        title="t",
        desc="d",
        uid="x",
    )

    assert 'fill="url(#x-hatch)"' in svg
    assert ">4</text>" in svg and ">3</text>" in svg  # totals written on bars


def test_chart_text_is_escaped():
    svg = heatmap(
        [[1]], row_labels=["<script>"], col_labels=["0"], title="&", desc="d", uid="h"
    )

    assert "<script>" not in svg
    assert "&lt;script&gt;" in svg


def test_a_bad_month_gives_a_clear_message_not_an_error(client, company):
    login(client, company, "owner")

    response = client.get(reverse("billing:analytics"), {"month": "2026-13"})

    assert response.status_code == 200
    assert "不是有效的月份" in response.content.decode()


def test_analytics_shows_only_the_users_company(client, company):
    build_bill(company)
    other = CompanyFactory(agent=company.agent)
    login(client, other, "owner")

    response = client.get(reverse("billing:analytics"), MARCH)

    assert response.context["summary"].calls == 0


@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_analytics_renders_in_both_languages(client, company, language):
    build_bill(company)
    login(client, company, "owner")
    client.cookies["hotline400_language"] = language

    response = client.get(reverse("billing:analytics"), MARCH)

    assert ("来电分析" if language == "zh-hans" else "Call analytics") in (
        response.content.decode()
    )


def test_analytics_query_count_does_not_grow_with_calls(
    client, company, django_assert_max_num_queries
):
    build_bill(company)
    big = CompanyFactory(agent=company.agent)
    build_bill(big, extra_peak_calls=60)
    url = reverse("billing:analytics")
    login(client, company, "owner")
    client.get(url, MARCH)
    with django_assert_max_num_queries(10) as small:
        client.get(url, MARCH)
    login(client, big, "owner")
    client.get(url, MARCH)
    with django_assert_max_num_queries(10) as large:
        client.get(url, MARCH)

    assert len(small.captured_queries) == len(large.captured_queries)
