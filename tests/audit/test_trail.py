import pytest
from django.core.exceptions import PermissionDenied
from django.db import DatabaseError, connection, transaction

from audit.models import AuditEvent
from audit.services import audit_record, snapshot
from tests.factories import AgentStaffFactory, CompanyFactory


@pytest.fixture
def event(db, company, agent_staff):
    before = snapshot(company, ["verification_status", "billing_email"])
    company.billing_email = "new@company.example.cn"
    return audit_record(
        actor=agent_staff,
        action="company.update",
        target=company,
        before=before,
        after=snapshot(company, ["verification_status", "billing_email"]),
    )


def test_event_records_who_what_and_the_change(event, company, agent_staff):
    event.refresh_from_db()

    assert (event.actor_label, event.action) == (agent_staff.email, "company.update")
    assert (event.company_id, event.agent_id) == (company.pk, company.agent_id)
    assert event.after["billing_email"] == "new@company.example.cn"
    assert event.before["billing_email"] != event.after["billing_email"]


def test_orm_cannot_change_or_delete_an_event(event):
    event.action = "something.else"
    with pytest.raises(PermissionDenied):
        event.save()
    with pytest.raises(PermissionDenied):
        event.delete()
    with pytest.raises(PermissionDenied):
        AuditEvent.objects.filter(pk=event.pk).update(action="x")
    with pytest.raises(PermissionDenied):
        AuditEvent.objects.filter(pk=event.pk).delete()


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE audit_auditevent SET action = 'x' WHERE id = %s",
        "DELETE FROM audit_auditevent WHERE id = %s",
    ],
)
def test_database_refuses_raw_update_and_delete(event, sql):
    with (
        pytest.raises(DatabaseError),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(sql, [event.pk])

    assert AuditEvent.objects.get(pk=event.pk).action == "company.update"


def test_agent_staff_see_only_their_agents_events_in_admin(client, event):
    other_staff = AgentStaffFactory()
    audit_record(
        actor=other_staff,
        action="company.update",
        target=CompanyFactory(agent=other_staff.agent),
    )
    client.force_login(other_staff)

    response = client.get("/admin/audit/auditevent/")
    change = client.get(f"/admin/audit/auditevent/{event.pk}/change/")

    assert response.status_code == 200
    assert list(response.context["cl"].queryset) == list(
        AuditEvent.objects.filter(agent=other_staff.agent)
    )
    assert change.status_code in (302, 404)
