"""SMTP down: the invoice stays issued, the failure is kept with its error,
and agent staff find the invoices whose email failed (to resend them).

Retries with backoff are tested against a real worker in
tests/billing/test_invoice_email.py.
"""

import datetime as dt

import pytest
from django.test import Client
from django.urls import reverse

from billing.models import Invoice, InvoiceEmail
from billing.services.invoices import (
    invoice_email_send,
    invoice_generate,
    invoice_issue,
)
from tests.factories import AgentStaffFactory, CompanyFactory, SubscriptionFactory

pytestmark = pytest.mark.django_db

MARCH = dt.date(2026, 3, 1)
CHANGELIST = "admin:billing_invoice_changelist"


def issued(agent, name):
    company = CompanyFactory(agent=agent, name=name)
    SubscriptionFactory(company=company, activated_on=MARCH)
    invoice = invoice_issue(invoice=invoice_generate(company=company, period=MARCH))
    return invoice, InvoiceEmail.objects.get(invoice=invoice)


def test_staff_see_which_invoice_emails_failed_and_why(smtp_server):
    # given two issued invoices of an agent: one mailed, one whose sending
    # failed because the SMTP server was down
    staff = AgentStaffFactory()
    _mailed, mailed_email = issued(staff.agent, "已发送企业")
    failed, failed_email = issued(staff.agent, "发送失败企业")
    invoice_email_send(email_id=mailed_email.pk)
    smtp_server.stop()
    with pytest.raises(OSError):
        invoice_email_send(email_id=failed_email.pk)
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(staff)

    # when staff filter the invoices on failed emails
    page = client.get(reverse(CHANGELIST), {"email": "failed"})

    # then only the failed one is listed, still issued, and its page shows
    # the attempt with the error
    assert [inv.pk for inv in page.context["cl"].result_list] == [failed.pk]
    assert Invoice.objects.get(pk=failed.pk).status == Invoice.Status.ISSUED
    detail = client.get(reverse("admin:billing_invoice_change", args=[failed.pk]))
    assert "Failed, will retry" in detail.text
    assert "ConnectionRefusedError" in detail.text
    # and nothing is left waiting to be sent
    unsent = client.get(reverse(CHANGELIST), {"email": "unsent"})
    assert list(unsent.context["cl"].result_list) == []
