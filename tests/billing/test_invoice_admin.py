"""The back office of invoices and the monthly close."""

import datetime as dt
from decimal import Decimal

import pytest
from django.contrib.admin import helpers
from django.urls import reverse

from billing.models import CloseRun, CreditNote, Invoice, InvoiceEmail
from billing.services.invoices import invoice_generate, invoice_issue
from tests.factories import (
    AgentFactory,
    AgentStaffFactory,
    CompanyFactory,
    SubscriptionFactory,
    shanghai,
)

MARCH = dt.date(2026, 3, 1)
CHANGELIST = "admin:billing_invoice_changelist"

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(client):
    user = AgentStaffFactory()
    client.force_login(user)
    return user


def draft_for(agent, name="测试企业"):
    sub = SubscriptionFactory(
        company=CompanyFactory(agent=agent, name=name), activated_on=MARCH
    )
    return invoice_generate(company=sub.company, period=MARCH)


def act(client, action, invoices, **data):
    return client.post(
        reverse(CHANGELIST),
        {
            "action": action,
            helpers.ACTION_CHECKBOX_NAME: [i.pk for i in invoices],
            "index": 0,
            **data,
        },
        follow=True,
    )


def test_staff_list_their_invoices_and_search_by_400_number(client, staff):
    mine = draft_for(staff.agent, "北京长城科技有限公司")
    other = draft_for(AgentFactory(), "上海外滩物流有限公司")
    number = mine.lines.first().subscription.number.number

    page = client.get(reverse(CHANGELIST))
    found = client.get(reverse(CHANGELIST), {"q": number})

    assert page.status_code == 200
    assert "北京长城科技有限公司" in page.text
    assert "上海外滩物流有限公司" not in page.text
    assert found.context["cl"].result_count == 1
    detail = client.get(reverse("admin:billing_invoice_change", args=[other.pk]))
    assert detail.status_code in (302, 404)


def test_issue_action_then_page_is_read_only(
    client, staff, django_capture_on_commit_callbacks
):
    draft = draft_for(staff.agent)

    with django_capture_on_commit_callbacks(execute=True):
        act(client, "issue_selected", [draft])

    draft.refresh_from_db()
    assert draft.status == Invoice.Status.ISSUED
    assert draft.issued_by == staff
    assert InvoiceEmail.objects.get(invoice=draft).status == "sent"
    page = client.get(reverse("admin:billing_invoice_change", args=[draft.pk]))
    assert page.status_code == 200
    assert 'name="_save"' not in page.text
    assert "HL-2026-000001" in page.text


def test_void_action_asks_for_a_reason(client, staff):
    invoice = invoice_issue(invoice=draft_for(staff.agent), now=shanghai(2026, 4, 1, 9))

    form = act(client, "void_selected", [invoice])
    assert "reason" in form.text
    act(client, "void_selected", [invoice], apply="1", reason="重复开具")

    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.VOID
    assert invoice.void_reason == "重复开具"


def test_mark_paid_and_credit_note_actions(client, staff):
    invoice = invoice_issue(invoice=draft_for(staff.agent), now=shanghai(2026, 4, 1, 9))

    act(
        client,
        "create_credit_note",
        [invoice],
        apply="1",
        amount="300.00",
        reason="too much",
    )
    assert not CreditNote.objects.exists()  # more than the ¥199.00 remaining
    act(
        client, "create_credit_note", [invoice], apply="1", amount="9.00", reason="补偿"
    )
    act(
        client,
        "mark_paid",
        [invoice],
        apply="1",
        paid_on="2026-04-10",
        method="wechat",
        reference="WX123",
    )

    invoice.refresh_from_db()
    assert CreditNote.objects.get().amount == Decimal("9.00")
    assert invoice.status == Invoice.Status.PAID
    assert invoice.payments.get().amount == Decimal("190.00")


def test_resend_action_queues_a_new_purpose(
    client, staff, django_capture_on_commit_callbacks
):
    invoice = invoice_issue(invoice=draft_for(staff.agent), now=shanghai(2026, 4, 1, 9))

    with django_capture_on_commit_callbacks(execute=True):
        act(client, "resend_email", [invoice])

    assert (
        InvoiceEmail.objects.get(invoice=invoice, purpose="resend-1").status == "sent"
    )


def test_invoices_cannot_be_deleted_or_added_in_the_admin(client, staff):
    invoice = draft_for(staff.agent)
    assert client.get(reverse("admin:billing_invoice_add")).status_code == 403
    delete = client.get(reverse("admin:billing_invoice_delete", args=[invoice.pk]))
    assert delete.status_code == 403


def test_pdf_download_in_the_back_office(client, staff):
    invoice = draft_for(staff.agent)
    response = client.get(reverse("admin:billing_invoice_pdf", args=[invoice.pk]))
    assert response["Content-Type"] == "application/pdf"
    assert response.content.startswith(b"%PDF")
    other = draft_for(AgentFactory(), "别家企业")
    assert (
        client.get(reverse("admin:billing_invoice_pdf", args=[other.pk])).status_code
        == 404
    )


@pytest.mark.django_db(transaction=True)
def test_staff_run_the_close_and_watch_its_progress(client):
    staff = AgentStaffFactory()
    client.force_login(staff)
    SubscriptionFactory(company=CompanyFactory(agent=staff.agent), activated_on=MARCH)
    SubscriptionFactory(company=CompanyFactory(), activated_on=MARCH)  # other agent

    form = client.get(reverse("admin:billing_closerun_start"))
    response = client.post(
        reverse("admin:billing_closerun_start"), {"period": "2026-03"}
    )

    assert form.status_code == 200
    run = CloseRun.objects.get()
    assert run.agent == staff.agent and run.started_by == staff
    assert response.url == reverse("admin:billing_closerun_progress", args=[run.pk])
    page = client.get(response.url)
    assert page.status_code == 200
    assert "js/close-progress.js" in page.text
    data = client.get(
        reverse("admin:billing_closerun_progress_json", args=[run.pk])
    ).json()
    assert data["total"] == 1 and data["finished"] is True
    assert data["counts"]["draft"] == 1
    assert Invoice.objects.count() == 1


def test_close_start_refuses_a_bad_month(client, staff):
    response = client.post(
        reverse("admin:billing_closerun_start"), {"period": "2026-3x"}
    )
    assert response.status_code == 200
    assert not CloseRun.objects.exists()
