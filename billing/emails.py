"""The invoice email: HTML and text in the company's language, the PDF attached."""

from __future__ import annotations

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string
from django.utils import translation

from billing.models import InvoiceEmail
from billing.pdf import invoice_pdf, invoice_pdf_filename


def invoice_url(invoice) -> str:
    """The absolute link to the bill page (``billing:invoice_detail``)."""
    return settings.HOTLINE_BASE_URL.rstrip("/") + invoice.get_absolute_url()


def invoice_email_message(email: InvoiceEmail) -> EmailMultiAlternatives:
    invoice = email.invoice
    language = invoice.language or invoice.company.language or settings.LANGUAGE_CODE
    context = {
        "invoice": invoice,
        "company_name": invoice.buyer_name or invoice.company.name,
        "invoice_url": invoice_url(invoice),
        "is_resend": email.purpose != "initial",
    }
    with translation.override(language):
        subject = render_to_string("billing/email/invoice_subject.txt", context)
        subject = " ".join(subject.split())
        text = render_to_string("billing/email/invoice.txt", context)
        html = render_to_string("billing/email/invoice.html", context)
    message = EmailMultiAlternatives(
        subject=subject,
        body=text,
        to=[email.to],
        headers={"X-Hotline400-Invoice": invoice.number or str(invoice.pk)},
    )
    message.attach_alternative(html, "text/html")
    message.attach(
        invoice_pdf_filename(invoice),
        invoice_pdf(invoice, language=language),
        "application/pdf",
    )
    return message
