"""The invoice PDF: WeasyPrint with a CJK font, text checked with pdftotext."""

import datetime as dt
import subprocess

import pytest

from billing.pdf import invoice_pdf
from billing.services.invoices import invoice_generate, invoice_issue, rate_pending
from tests.billing.invoice_helpers import march_company
from tests.factories import shanghai

MARCH = dt.date(2026, 3, 1)

pytestmark = pytest.mark.django_db


def pdf_text(data: bytes, tmp_path) -> str:
    path = tmp_path / "invoice.pdf"
    path.write_bytes(data)
    out = subprocess.run(
        ["pdftotext", "-layout", str(path), "-"],
        check=True,
        capture_output=True,
    )
    return out.stdout.decode("utf-8")


def test_pdf_shows_the_chinese_company_lines_vat_and_total(tmp_path):
    # given the hand-checked March invoice (see test_invoices.py), issued
    company, _a, _b = march_company()
    rate_pending(company=company, period=MARCH)
    invoice = invoice_issue(
        invoice=invoice_generate(company=company, period=MARCH),
        now=shanghai(2026, 4, 1, 9, 0),
        force=True,
    )

    # when it is rendered
    data = invoice_pdf(invoice)

    # then the Chinese text is real text (a CJK font was embedded)
    assert data.startswith(b"%PDF")
    text = pdf_text(data, tmp_path)
    assert "深圳市华南贸易有限公司" in text
    assert "HL-2026-000001" in text
    assert "¥5,172.36" in text
    assert "400-810-0001" in text and "400-810-0002" in text
    assert "¥259.59" in text and "¥114.81" in text  # VAT of each category
    assert "¥2,000.00" in text  # the vanity selection fee
    assert company.agent.legal_name in text


def test_draft_pdf_says_draft_in_english(tmp_path):
    company, _a, _b = march_company(name="Acme Trading Co.")
    invoice = invoice_generate(company=company, period=MARCH)

    text = pdf_text(invoice_pdf(invoice, language="en"), tmp_path)

    assert "DRAFT" in text
    assert "Acme Trading Co." in text
    assert "How this bill is calculated" in text
