"""The invoice email, delivered to a real SMTP server (aiosmtpd) started here."""

import datetime as dt

import pytest
from celery.exceptions import Retry
from django.conf import settings

from billing.models import Invoice, InvoiceEmail
from billing.services.invoices import invoice_generate, invoice_issue, invoice_resend
from billing.tasks.invoices import invoice_email_send_task
from tests.conftest import wait_for
from tests.factories import CompanyFactory, SubscriptionFactory, shanghai

MARCH = dt.date(2026, 3, 1)
ISSUE_TIME = shanghai(2026, 4, 1, 9, 0)


def issue_march(company, capture=None):
    """Issue the company's March (one ¥199 number all month: ¥199.00)."""
    SubscriptionFactory(company=company, activated_on=MARCH)
    invoice = invoice_generate(company=company, period=MARCH)
    if capture is None:
        return invoice_issue(invoice=invoice, now=ISSUE_TIME)
    with capture(execute=True):
        return invoice_issue(invoice=invoice, now=ISSUE_TIME)


def delivered_to(server, address):
    return [msg for env, msg in server.messages if address in env.rcpt_tos]


@pytest.mark.django_db
def test_issued_invoice_is_mailed_with_html_text_and_pdf(
    smtp_server, django_capture_on_commit_callbacks
):
    # given a Chinese-speaking company
    company = CompanyFactory(name="杭州西湖茶业有限公司", language="zh-hans")

    # when its invoice is issued
    invoice = issue_march(company, django_capture_on_commit_callbacks)

    # then one message reached the SMTP server, in Chinese, with the PDF
    (msg,) = delivered_to(smtp_server, company.billing_email)
    assert msg["To"] == company.billing_email
    assert "HL-2026-000001" in msg["Subject"]
    assert "¥199.00" in msg["Subject"]
    assert "账单" in msg["Subject"]
    text = msg.get_body(preferencelist=("plain",)).get_content()
    html = msg.get_body(preferencelist=("html",)).get_content()
    link = settings.HOTLINE_BASE_URL.rstrip("/") + invoice.get_absolute_url()
    assert link in text and link in html
    assert "杭州西湖茶业有限公司" in text
    (attachment,) = list(msg.iter_attachments())
    assert attachment.get_content_type() == "application/pdf"
    assert attachment.get_filename() == "HL-2026-000001.pdf"
    assert attachment.get_content().startswith(b"%PDF")
    email = InvoiceEmail.objects.get(invoice=invoice)
    assert email.status == "sent"
    assert [a["result"] for a in email.attempts] == ["sent"]


@pytest.mark.django_db
def test_email_speaks_english_to_an_english_company(
    smtp_server, django_capture_on_commit_callbacks
):
    company = CompanyFactory(language="en")

    issue_march(company, django_capture_on_commit_callbacks)

    (msg,) = delivered_to(smtp_server, company.billing_email)
    assert msg["Subject"].strip().startswith("Your Hotline400 bill for 2026-03")
    assert "Your bill for 2026-03 is ready." in msg.get_body(("plain",)).get_content()


@pytest.mark.django_db
def test_server_down_records_the_attempt_and_retries_then_sends_once(
    smtp_server, django_capture_on_commit_callbacks
):
    # given the SMTP server is down
    smtp_server.stop()
    company = CompanyFactory()

    # when the invoice is issued, the sending fails
    invoice = issue_march(company, django_capture_on_commit_callbacks)

    # then the invoice stays issued and the failed attempt is recorded
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.ISSUED
    email = InvoiceEmail.objects.get(invoice=invoice)
    assert email.status == "failed"
    (attempt,) = email.attempts
    assert attempt["result"] == "failed"
    assert "Connection refused" in attempt["error"] or "Errno" in attempt["error"]

    # and the task asks to be retried later (backoff), recording again
    with pytest.raises(Retry) as retry:
        invoice_email_send_task.apply(args=[email.pk])
    # exponential backoff with full jitter: 0 ≤ countdown ≤ 2 ** retries
    assert 0 <= retry.value.when <= 1
    assert isinstance(retry.value.exc, ConnectionRefusedError)
    email.refresh_from_db()
    assert len(email.attempts) == 2

    # when the server is back, the retry delivers exactly one message
    smtp_server.start()
    assert invoice_email_send_task.apply(args=[email.pk]).get() == "sent"
    assert invoice_email_send_task.apply(args=[email.pk]).get() == "skipped"
    assert len(delivered_to(smtp_server, company.billing_email)) == 1
    email.refresh_from_db()
    assert [a["result"] for a in email.attempts] == ["failed", "failed", "sent"]


@pytest.mark.django_db
def test_a_second_delivery_of_the_task_sends_nothing(
    smtp_server, django_capture_on_commit_callbacks
):
    company = CompanyFactory()
    invoice = issue_march(company, django_capture_on_commit_callbacks)
    email = InvoiceEmail.objects.get(invoice=invoice)

    assert invoice_email_send_task.apply(args=[email.pk]).get() == "skipped"
    assert len(delivered_to(smtp_server, company.billing_email)) == 1


@pytest.mark.django_db
def test_staff_resend_sends_again_under_a_new_purpose(
    smtp_server, django_capture_on_commit_callbacks
):
    company = CompanyFactory()
    invoice = issue_march(company, django_capture_on_commit_callbacks)

    with django_capture_on_commit_callbacks(execute=True):
        first = invoice_resend(invoice=invoice)
    with django_capture_on_commit_callbacks(execute=True):
        second = invoice_resend(invoice=invoice, to="cfo@company.example.cn")

    assert (first.purpose, second.purpose) == ("resend-1", "resend-2")
    assert len(delivered_to(smtp_server, company.billing_email)) == 2
    assert len(delivered_to(smtp_server, "cfo@company.example.cn")) == 1


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_retries_until_the_server_is_back(smtp_server, celery_worker):
    # given the SMTP server is down
    smtp_server.stop()
    company = CompanyFactory()

    # when the invoice is issued (the email task goes to the real worker)
    invoice = issue_march(company)

    # then the worker records a failed attempt and schedules a retry
    email = wait_for(
        lambda: InvoiceEmail.objects.filter(invoice=invoice, status="failed").first(),
        timeout=60,
    )
    assert email.attempts[0]["result"] == "failed"
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.ISSUED

    # when the server comes back, a retry delivers it, once
    smtp_server.start()
    wait_for(
        lambda: InvoiceEmail.objects.filter(invoice=invoice, status="sent").exists(),
        timeout=90,
    )
    email.refresh_from_db()
    assert email.attempts[-1]["result"] == "sent"
    assert all(a["result"] == "failed" for a in email.attempts[:-1])
    assert len(delivered_to(smtp_server, company.billing_email)) == 1
