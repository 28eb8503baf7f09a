"""An issued invoice never changes: refused by the model layer and by PostgreSQL."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db import IntegrityError, connection, transaction

from billing.models import FrozenInvoiceError, Invoice, InvoiceLine
from billing.services.invoices import invoice_generate, invoice_issue
from tests.factories import SubscriptionFactory, shanghai

MARCH = dt.date(2026, 3, 1)

pytestmark = pytest.mark.django_db


@pytest.fixture
def issued():
    sub = SubscriptionFactory(activated_on=MARCH)
    invoice = invoice_generate(company=sub.company, period=MARCH)
    return invoice_issue(invoice=invoice, now=shanghai(2026, 4, 1, 9, 0))


@pytest.fixture
def draft():
    sub = SubscriptionFactory(activated_on=MARCH)
    return invoice_generate(company=sub.company, period=MARCH)


def raw(sql, params):
    """Run SQL directly (no model layer) and report the database's refusal."""
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute(sql, params)


# --- the model layer ---------------------------------------------------------


def test_saving_a_changed_issued_invoice_is_refused(issued):
    issued.total = Decimal("1.00")
    with pytest.raises(FrozenInvoiceError):
        issued.save()


def test_deleting_an_issued_invoice_is_refused(issued):
    with pytest.raises(FrozenInvoiceError):
        issued.delete()
    with pytest.raises(FrozenInvoiceError):
        Invoice.objects.filter(pk=issued.pk).delete()


def test_queryset_update_of_issued_invoices_is_refused(issued):
    with pytest.raises(FrozenInvoiceError):
        Invoice.objects.filter(pk=issued.pk).update(total=Decimal("0.00"))
    with pytest.raises(FrozenInvoiceError):
        Invoice.objects.filter(pk=issued.pk).update(status="draft")


def test_lines_of_an_issued_invoice_cannot_change(issued):
    line = issued.lines.get()
    line.amount = Decimal("0.01")
    with pytest.raises(FrozenInvoiceError):
        line.save()
    with pytest.raises(FrozenInvoiceError):
        line.delete()
    with pytest.raises(FrozenInvoiceError):
        InvoiceLine.objects.filter(invoice=issued).update(amount=Decimal("0"))
    with pytest.raises(FrozenInvoiceError):
        InvoiceLine.objects.filter(invoice=issued).delete()
    with pytest.raises(FrozenInvoiceError):
        InvoiceLine.objects.bulk_create([_copy(line)])
    assert issued.lines.get().amount == Decimal("199.00")


def _copy(line):
    line.pk = None
    line.position = 99
    return line


def test_issued_may_become_paid_or_void_and_nothing_else(issued):
    issued.status = Invoice.Status.VOID
    issued.voided_at = shanghai(2026, 4, 2, 9, 0)
    issued.void_reason = "重复"
    issued.save()
    issued.status = Invoice.Status.ISSUED
    with pytest.raises(FrozenInvoiceError):
        issued.save()


def test_drafts_change_freely(draft):
    draft.total = Decimal("5.00")
    draft.save()
    draft.lines.update(description="x")
    draft.delete()
    assert not Invoice.objects.exists()


# --- the database (PostgreSQL trigger), bypassing the model layer -------------


def test_database_refuses_updating_an_issued_invoice(issued):
    with pytest.raises(IntegrityError):
        raw("UPDATE billing_invoice SET total = 0 WHERE id = %s", [issued.pk])
    with pytest.raises(IntegrityError):
        raw("UPDATE billing_invoice SET buyer_name = 'x' WHERE id = %s", [issued.pk])
    with pytest.raises(IntegrityError):
        raw("UPDATE billing_invoice SET status = 'draft' WHERE id = %s", [issued.pk])
    issued.refresh_from_db()
    assert issued.total == Decimal("199.00")


def test_database_refuses_deleting_an_issued_invoice(issued):
    with pytest.raises(IntegrityError):
        raw("DELETE FROM billing_invoiceline WHERE invoice_id = %s", [issued.pk])
    with pytest.raises(IntegrityError):
        raw("DELETE FROM billing_invoice WHERE id = %s", [issued.pk])
    assert Invoice.objects.filter(pk=issued.pk).exists()


def test_database_refuses_touching_lines_of_an_issued_invoice(issued):
    line = issued.lines.get()
    with pytest.raises(IntegrityError):
        raw("UPDATE billing_invoiceline SET amount = 0 WHERE id = %s", [line.pk])
    with pytest.raises(IntegrityError):
        raw(
            "INSERT INTO billing_invoiceline (invoice_id, subscription_id,"
            " number_display, position, kind, description, tax_category, tax_rate,"
            " quantity, unit, unit_price, amount) SELECT invoice_id,"
            " subscription_id, number_display, 2, kind, description, tax_category,"
            " tax_rate, quantity, unit, unit_price, amount"
            " FROM billing_invoiceline WHERE id = %s",
            [line.pk],
        )


def test_database_allows_paying_and_voiding_an_issued_invoice(issued):
    raw(
        "UPDATE billing_invoice SET status = 'void', voided_at = now(),"
        " void_reason = 'x' WHERE id = %s",
        [issued.pk],
    )
    issued.refresh_from_db()
    assert issued.status == "void"
    with pytest.raises(IntegrityError):
        raw("UPDATE billing_invoice SET status = 'paid' WHERE id = %s", [issued.pk])
    with pytest.raises(IntegrityError):
        raw("UPDATE billing_invoice SET void_reason = 'y' WHERE id = %s", [issued.pk])


def test_database_allows_drafts_to_change(draft):
    raw("UPDATE billing_invoiceline SET amount = 1 WHERE invoice_id = %s", [draft.pk])
    raw("DELETE FROM billing_invoiceline WHERE invoice_id = %s", [draft.pk])
    raw("DELETE FROM billing_invoice WHERE id = %s", [draft.pk])
    assert not Invoice.objects.exists()
