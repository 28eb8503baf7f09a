"""CSV downloads (Excel-safe) and the PDF download."""

import csv
import io
from decimal import Decimal

import pytest
from django.urls import reverse
from hypothesis import given
from hypothesis import strategies as st

from billing.csv_export import BOM, csv_bytes, csv_cell
from billing.models import CallRecord
from tests.billing.bill_data import build_bill, login


def _body(response) -> bytes:
    if response.streaming:
        return b"".join(response.streaming_content)
    return response.content


def _rows(data: bytes) -> list[list[str]]:
    assert data.startswith(BOM.encode("utf-8"))
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


@pytest.mark.parametrize(
    "text", ["=1+1", "+86 138", "-2+3", "@SUM(A1)", "\t=1", "\r=1"]
)
def test_text_that_spreadsheets_would_evaluate_gets_a_quote(text):
    assert csv_cell(text) == "'" + text


def test_numbers_stay_numbers_even_when_negative():
    assert csv_cell(Decimal("-12.50")) == Decimal("-12.50")
    assert csv_cell(7) == 7
    assert csv_cell(None) == ""


@given(st.text())
def test_no_cell_read_back_starts_a_formula(text):
    data = csv_bytes(["h"], [[text]])

    cell = _rows(data)[1][0]

    assert not cell.startswith(("=", "+", "-", "@", "\t", "\r"))
    assert cell in (text, "'" + text)


def test_lines_csv_has_bom_chinese_header_and_every_line(client, company):
    bill = build_bill(company)
    login(client, company, "finance")

    response = client.get(
        reverse("billing:invoice_lines_csv", kwargs={"pk": bill.invoice.pk})
    )

    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert "attachment" in response["Content-Disposition"]
    rows = _rows(_body(response))
    assert rows[0][0] == "账单号"
    assert [r[4] for r in rows[1:]] == [ln.description for ln in bill.lines.values()]
    assert sum(Decimal(r[-1]) for r in rows[1:]) == Decimal("2220.30")
    peak = next(r for r in rows if r[4] == "呼入 高峰")
    assert peak[9:12] == ["5", "3", "2"]


def test_calls_csv_is_streamed_masked_and_formula_safe(client, company):
    bill = build_bill(company)
    CallRecord.objects.filter(pk=bill.calls[1].pk).update(
        caller_area="=cmd|' /C calc'!A0"
    )
    login(client, company, "owner")

    response = client.get(
        reverse("billing:invoice_calls_csv", kwargs={"pk": bill.invoice.pk})
    )

    assert response.streaming
    rows = _rows(_body(response))
    assert len(rows) == 1 + len(bill.calls)
    assert {r[3] for r in rows[1:]} >= {"138****8000"}
    assert "13800138000" not in {r[3] for r in rows[1:]}
    assert "'=cmd|' /C calc'!A0" in {r[4] for r in rows[1:]}
    assert rows[1][2] == "2026-03-02 09:00:00"  # Beijing time, not UTC
    assert {r[7] for r in rows[1:]} == {"已接听", "漏接"}


def test_line_calls_csv_lists_only_that_lines_calls(client, company):
    bill = build_bill(company)
    login(client, company, "owner")

    response = client.get(
        reverse("billing:line_calls_csv", kwargs={"pk": bill.lines["offpeak"].pk})
    )

    rows = _rows(_body(response))
    assert [r[5] for r in rows[1:]] == ["600"]


def test_pdf_download_is_a_pdf(client, company):
    bill = build_bill(company)
    login(client, company, "owner")

    response = client.get(
        reverse("billing:invoice_pdf", kwargs={"pk": bill.invoice.pk})
    )

    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response.content.startswith(b"%PDF")
