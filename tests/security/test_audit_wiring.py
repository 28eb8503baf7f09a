"""Every sensitive action leaves an audit event: who, when, what, before/after.

One test per kind of action, through the same service (or admin page) the
portal and the back office use. The event is written in the action's own
transaction: an action that fails records nothing.
"""

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from accounts import services as account_services
from accounts.models import User
from audit.models import AuditEvent
from billing.models import Invoice
from billing.services import invoices as invoice_services
from billing.services.agent_api_keys import agent_api_key_create, agent_api_key_revoke
from billing.services.company_api_keys import api_key_create, api_key_revoke
from plans import services as plan_services
from plans.catalog_services import catalog_load
from plans.models import Plan, Subscription
from tests.billing.bill_data import build_bill
from tests.factories import (
    CompanyFactory,
    PlanFactory,
    SubscriptionFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


def only_event(action: str) -> AuditEvent:
    events = list(AuditEvent.objects.filter(action=action))
    assert len(events) == 1, f"expected one {action!r} event, got {len(events)}"
    return events[0]


def assert_recent(event: AuditEvent) -> None:
    assert abs(timezone.now() - event.at) < dt.timedelta(minutes=1)


# --- accounts -------------------------------------------------------------------


def test_a_verification_decision_records_the_staff_member_and_the_change(
    agent, agent_staff
):
    pending = CompanyFactory(agent=agent, verification_status="pending")

    account_services.company_reject(
        company=pending, by=agent_staff, reason="执照模糊，请重新上传"
    )

    event = only_event("company.verification.rejected")
    assert (event.actor_id, event.actor_label) == (agent_staff.pk, agent_staff.email)
    assert (event.company_id, event.agent_id) == (pending.pk, agent.pk)
    assert event.before["verification_status"] == "pending"
    assert event.after["verification_status"] == "rejected"
    assert event.after["verification_reason"] == "执照模糊，请重新上传"
    assert_recent(event)


def test_approval_is_recorded_too(agent, agent_staff):
    pending = CompanyFactory(agent=agent, verification_status="pending")

    account_services.company_approve(company=pending, by=agent_staff)

    event = only_event("company.verification.approved")
    assert event.after["verified_by"] == agent_staff.pk


def test_a_role_change_records_the_old_and_new_role(company, owner):
    member = UserFactory(company=company, role=User.Role.MEMBER)

    account_services.user_change_role(user=member, role="finance", by=owner)

    event = only_event("user.role")
    assert (event.actor_id, event.target_id) == (owner.pk, str(member.pk))
    assert (event.before, event.after) == ({"role": "member"}, {"role": "finance"})


def test_a_refused_role_change_records_nothing(company, owner):
    with pytest.raises(ValidationError):
        account_services.user_change_role(user=owner, role="member", by=owner)

    assert not AuditEvent.objects.filter(action="user.role").exists()


def test_deactivation_is_recorded(company, owner):
    member = UserFactory(company=company, role=User.Role.MEMBER)

    account_services.user_set_active(user=member, active=False, by=owner)

    event = only_event("user.deactivate")
    assert (event.before, event.after) == ({"is_active": True}, {"is_active": False})


def test_an_invitation_and_its_withdrawal_are_recorded(company, owner):
    invitation, _token = account_services.invitation_create(
        company=company, by=owner, email="new.hire@example.cn", role="finance"
    )
    account_services.invitation_revoke(invitation=invitation, by=owner)

    created = only_event("invitation.create")
    assert created.after["email"] == "new.hire@example.cn"
    assert created.after["role"] == "finance"
    assert only_event("invitation.revoke").after["revoked_at"] is not None


# --- subscriptions --------------------------------------------------------------


def test_activation_records_the_date_and_who(company, agent_staff):
    sub = SubscriptionFactory(
        company=company, status=Subscription.Status.PENDING, activated_on=None
    )

    plan_services.subscription_activate(
        subscription=sub, on=dt.date(2026, 4, 1), by=agent_staff
    )

    event = only_event("subscription.activate")
    assert event.actor_id == agent_staff.pk
    assert event.before == {"status": "pending", "activated_on": None}
    assert event.after == {"status": "active", "activated_on": "2026-04-01"}


def test_a_plan_change_records_the_periods_before_and_after(company, owner):
    old, new = PlanFactory(), PlanFactory()
    sub = SubscriptionFactory(
        company=company, plan=old, activated_on=dt.date(2026, 3, 1)
    )

    plan_services.subscription_change_plan(
        subscription=sub, plan=new, by=owner, today=dt.date(2026, 3, 15)
    )

    event = only_event("subscription.change_plan")
    assert event.before == {"plan_periods": [[old.code, "2026-03-01", None]]}
    assert event.after == {
        "plan_periods": [
            [old.code, "2026-03-01", "2026-03-31"],
            [new.code, "2026-04-01", None],
        ]
    }


def test_ending_a_subscription_is_recorded(company, owner):
    sub = SubscriptionFactory(company=company, activated_on=dt.date(2026, 3, 1))

    plan_services.subscription_end(
        subscription=sub, by=owner, today=dt.date(2026, 5, 20)
    )

    event = only_event("subscription.end")
    assert event.before == {"status": "active", "ended_on": None}
    assert event.after == {"status": "ended", "ended_on": "2026-05-20"}


# --- invoices -------------------------------------------------------------------


def test_void_credit_note_and_payment_are_recorded(company, agent_staff):
    voided = build_bill(company).invoice
    paid = build_bill(CompanyFactory(agent=company.agent)).invoice

    invoice_services.invoice_void(invoice=voided, reason="重复开票", by=agent_staff)
    invoice_services.credit_note_create(
        invoice=paid, amount=Decimal("20.30"), reason="折让", by=agent_staff
    )
    invoice_services.payment_record(
        invoice=paid,
        paid_on=dt.date(2026, 4, 20),
        method="bank_transfer",
        by=agent_staff,
    )

    void = only_event("invoice.void")
    assert void.before == {"status": "issued"}
    assert void.after == {"status": "void", "void_reason": "重复开票"}
    credit = only_event("invoice.credit_note")
    assert credit.after["amount"] == "20.30"
    assert credit.before["remaining"] == str(paid.total)
    payment = only_event("invoice.payment")
    assert payment.after["status"] == "paid"
    assert Decimal(payment.after["payment"]["amount"]) == paid.total - Decimal("20.30")
    assert {e.actor_id for e in (void, credit, payment)} == {agent_staff.pk}


def test_a_refused_void_records_nothing(company, agent_staff):
    invoice = build_bill(company).invoice
    Invoice.objects.filter(pk=invoice.pk).update(status=Invoice.Status.PAID)

    with pytest.raises(invoice_services.InvoiceError):
        invoice_services.invoice_void(invoice=invoice, reason="x", by=agent_staff)

    assert not AuditEvent.objects.filter(action="invoice.void").exists()


def test_issuing_is_recorded_with_the_number_and_total(company, agent_staff):
    SubscriptionFactory(company=company, activated_on=dt.date(2026, 3, 1))
    draft = invoice_services.invoice_generate(
        company=company, period=dt.date(2026, 3, 1)
    )

    issued = invoice_services.invoice_issue(invoice=draft, by=agent_staff, force=True)

    event = only_event("invoice.issue")
    assert event.before == {"status": "draft"}
    assert event.after["number"] == issued.number
    assert Decimal(event.after["total"]) == issued.total


# --- API keys -------------------------------------------------------------------


def test_company_and_agent_api_keys_are_recorded_without_the_secret(
    company, owner, agent, agent_staff
):
    key, raw = api_key_create(company=company, name="ERP", by=owner)
    api_key_revoke(company=company, pk=key.pk, by=owner)
    agent_key, agent_raw = agent_api_key_create(
        agent=agent, name="电信", by=agent_staff
    )
    agent_api_key_revoke(key=agent_key, by=agent_staff)

    actions = list(AuditEvent.objects.order_by("pk").values_list("action", "actor_id"))
    assert actions == [
        ("api_key.create", owner.pk),
        ("api_key.revoke", owner.pk),
        ("agent_api_key.create", agent_staff.pk),
        ("agent_api_key.revoke", agent_staff.pk),
    ]
    stored = str(list(AuditEvent.objects.values_list("before", "after")))
    assert raw not in stored and agent_raw not in stored
    assert only_event("agent_api_key.create").agent_id == agent.pk


# --- the catalog ----------------------------------------------------------------


def test_a_catalog_edit_in_the_admin_records_before_and_after(client, agent_staff):
    plan = PlanFactory(price=Decimal("199.00"))
    client.force_login(agent_staff)
    page = client.get(f"/admin/plans/plan/{plan.pk}/change/")
    data = {
        k: v for k, v in page.context["adminform"].form.initial.items() if v is not None
    }
    data["included_services"] = []
    data["price"] = "219.00"

    response = client.post(f"/admin/plans/plan/{plan.pk}/change/", data)

    assert response.status_code == 302, response.context["adminform"].form.errors
    event = only_event("catalog.change")
    assert (event.actor_id, event.agent_id) == (agent_staff.pk, agent_staff.agent_id)
    assert event.target_type == "plans.Plan"
    assert (event.before, event.after) == ({"price": "199.00"}, {"price": "219.00"})


def test_catalog_deletion_in_the_admin_is_recorded(client, agent_staff):
    plan = PlanFactory(code="old-unused")
    client.force_login(agent_staff)

    client.post(f"/admin/plans/plan/{plan.pk}/delete/", {"post": "yes"})

    assert not Plan.objects.filter(pk=plan.pk).exists()
    event = only_event("catalog.delete")
    assert event.before["code"] == "old-unused" and event.after is None


def test_loading_a_catalog_records_each_row_it_creates_or_changes(db):
    PlanFactory(code="biz-199", price=Decimal("199.00"))
    document = {
        "plans": [
            {
                "code": "biz-199",
                "name_zh": "商务199",
                "name_en": "Business 199",
                "term_months": 1,
                "price": "209.00",
                "included_minutes": 1000,
                "rates": {
                    "inbound_peak": "0.15",
                    "inbound_offpeak": "0.10",
                    "outbound": "0.20",
                },
            }
        ]
    }

    catalog_load(document=document)

    event = only_event("catalog.load.change")
    assert event.actor_label == "system"
    assert event.before["price"] == "199.00" and event.after["price"] == "209.00"
