"""The invoice as a PDF: WeasyPrint over ``billing/invoice_pdf.html``.

Chinese renders with "Noto Sans CJK SC" (Debian's fonts-noto-cjk, installed
by .ci/run). The document is in the invoice's language (the company's,
copied on issue). An issued invoice shows the buyer and seller copied onto
it; a draft shows the live details and says DRAFT.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from decimal import Decimal

from django.conf import settings
from django.template.loader import render_to_string
from django.utils import translation

from billing.models import Invoice, InvoiceLine
from billing.money import money_sum
from plans.models import TaxCategory


@dataclass
class NumberGroup:
    number_display: str
    lines: list[InvoiceLine] = field(default_factory=list)

    @property
    def subtotal(self) -> Decimal:
        return money_sum(ln.amount for ln in self.lines)


def group_lines(lines) -> list[NumberGroup]:
    """Lines grouped by 400 number, in line order."""
    groups: OrderedDict[str, NumberGroup] = OrderedDict()
    for ln in lines:
        groups.setdefault(ln.number_display, NumberGroup(ln.number_display))
        groups[ln.number_display].lines.append(ln)
    return list(groups.values())


def vat_rows(lines) -> list[dict]:
    """The VAT table of stored lines (same rule as ``billing.pricing.vat_table``)."""
    from billing import pricing

    labels = dict(TaxCategory.choices)
    return [
        {
            "category": row.category,
            "label": labels.get(row.category, row.category),
            "rate": row.rate,
            "gross": row.gross,
            "tax": row.tax,
            "net": row.net,
        }
        for row in pricing.vat_table(list(lines))
    ]


def parties(invoice: Invoice) -> dict:
    """Seller and buyer as the document shows them."""
    if invoice.status != Invoice.Status.DRAFT:
        return {
            "seller": {
                "name": invoice.seller_name,
                "uscc": invoice.seller_uscc,
                "address": invoice.seller_address,
                "bank": invoice.seller_bank,
            },
            "buyer": {
                "name": invoice.buyer_name,
                "uscc": invoice.buyer_uscc,
                "address": invoice.buyer_address,
                "email": invoice.buyer_email,
            },
        }
    company = invoice.company
    agent = company.agent
    return {
        "seller": {
            "name": agent.legal_name or agent.name,
            "uscc": agent.uscc,
            "address": agent.address,
            "bank": " ".join(p for p in (agent.bank_name, agent.bank_account) if p),
        },
        "buyer": {
            "name": company.name,
            "uscc": company.uscc,
            "address": company.address,
            "email": company.billing_email,
        },
    }


def invoice_document_context(invoice: Invoice) -> dict:
    lines = list(invoice.lines.order_by("position"))
    credit_notes = list(invoice.credit_notes.order_by("created_at"))
    credited = money_sum(c.amount for c in credit_notes)
    return {
        "invoice": invoice,
        "groups": group_lines(lines),
        "vat": vat_rows(lines),
        "total": invoice.total,
        "credit_notes": credit_notes,
        "remaining": invoice.total - credited,
        "is_draft": invoice.status == Invoice.Status.DRAFT,
        **parties(invoice),
    }


def invoice_pdf(invoice: Invoice, *, language: str | None = None) -> bytes:
    """The invoice as PDF bytes, in ``language`` or the invoice's language."""
    from weasyprint import HTML

    language = language or invoice.language or settings.LANGUAGE_CODE
    with translation.override(language):
        html = render_to_string(
            "billing/invoice_pdf.html", invoice_document_context(invoice)
        )
    return HTML(string=html, base_url=str(settings.BASE_DIR)).write_pdf()


def invoice_pdf_filename(invoice: Invoice) -> str:
    name = invoice.number or f"draft-{invoice.period:%Y-%m}"
    return f"{name}.pdf"
