"""Agent staff approve or reject a company; owners are emailed after commit."""

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.urls import reverse

from accounts import services
from accounts.models import Company, User
from tests.factories import AgentStaffFactory, CompanyFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def pending(agent):
    company = CompanyFactory(
        agent=agent, verification_status=Company.Verification.PENDING, language="en"
    )
    UserFactory(company=company, role=User.Role.OWNER, email="boss@pending.cn")
    UserFactory(company=company, role=User.Role.OWNER, email="boss2@pending.cn")
    UserFactory(company=company, role=User.Role.MEMBER, email="staff@pending.cn")
    return company


def test_approval_emails_the_owners_only_after_commit(
    pending, agent_staff, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        services.company_approve(company=pending, by=agent_staff)
        assert mail.outbox == []

    pending.refresh_from_db()
    assert pending.is_verified
    assert pending.verified_by == agent_staff
    assert pending.verified_at is not None
    [message] = mail.outbox
    assert sorted(message.to) == ["boss2@pending.cn", "boss@pending.cn"]
    assert "verified" in message.subject
    assert message.alternatives[0][1] == "text/html"


def test_rejection_emails_the_reason_in_the_companys_language(
    agent, agent_staff, django_capture_on_commit_callbacks
):
    company = CompanyFactory(
        agent=agent, verification_status=Company.Verification.PENDING
    )
    UserFactory(company=company, role=User.Role.OWNER)

    with django_capture_on_commit_callbacks(execute=True):
        services.company_reject(
            company=company, by=agent_staff, reason="营业执照照片不清晰"
        )

    [message] = mail.outbox
    assert "营业执照照片不清晰" in message.body
    assert "营业执照照片不清晰" in message.alternatives[0][0]
    assert "未通过" in message.subject
    company.refresh_from_db()
    assert company.verification_status == Company.Verification.REJECTED


def test_a_rejection_needs_a_reason(pending, agent_staff):
    with pytest.raises(ValidationError):
        services.company_reject(company=pending, by=agent_staff, reason="  ")

    pending.refresh_from_db()
    assert pending.verification_status == Company.Verification.PENDING


def test_staff_of_another_agent_cannot_decide(pending):
    stranger = AgentStaffFactory()

    with pytest.raises(PermissionDenied):
        services.company_approve(company=pending, by=stranger)


@pytest.mark.django_db(transaction=True)
def test_nothing_is_emailed_when_the_decision_rolls_back(agent):
    company = CompanyFactory(
        agent=agent, verification_status=Company.Verification.PENDING
    )
    UserFactory(company=company, role=User.Role.OWNER)
    staff = AgentStaffFactory(agent=agent)

    with pytest.raises(RuntimeError), transaction.atomic():
        services.company_approve(company=company, by=staff)
        raise RuntimeError("the request failed later")

    company.refresh_from_db()
    assert company.verification_status == Company.Verification.PENDING
    assert mail.outbox == []


@pytest.mark.django_db(transaction=True)
def test_the_email_leaves_once_the_decision_is_committed(agent):
    company = CompanyFactory(
        agent=agent, verification_status=Company.Verification.PENDING
    )
    UserFactory(company=company, role=User.Role.OWNER, email="o@committed.cn")
    staff = AgentStaffFactory(agent=agent)

    services.company_approve(company=company, by=staff)

    assert [m.to for m in mail.outbox] == [["o@committed.cn"]]


def _action(client, action, companies, **extra):
    return client.post(
        reverse("admin:accounts_company_changelist"),
        {"action": action, "_selected_action": [c.pk for c in companies], **extra},
    )


def test_staff_approve_from_the_verification_queue(
    client, pending, agent_staff, django_capture_on_commit_callbacks
):
    client.force_login(agent_staff)

    with django_capture_on_commit_callbacks(execute=True):
        response = _action(client, "approve_selected", [pending])

    assert response.status_code == 302
    pending.refresh_from_db()
    assert pending.is_verified
    assert len(mail.outbox) == 1


def test_rejecting_in_the_admin_asks_for_a_reason_first(
    client, pending, agent_staff, django_capture_on_commit_callbacks
):
    client.force_login(agent_staff)

    ask = _action(client, "reject_selected", [pending])
    empty = _action(client, "reject_selected", [pending], apply="1", reason="")
    with django_capture_on_commit_callbacks(execute=True):
        done = _action(
            client, "reject_selected", [pending], apply="1", reason="执照已过期"
        )

    assert ask.status_code == 200
    assert "accounts/admin/reject_companies.html" in [t.name for t in ask.templates]
    assert empty.status_code == 200
    assert empty.context["form"].errors
    assert done.status_code == 302
    pending.refresh_from_db()
    assert pending.verification_status == Company.Verification.REJECTED
    assert pending.verification_reason == "执照已过期"
    assert len(mail.outbox) == 1


def test_staff_cannot_approve_another_agents_company_through_the_admin(
    client, agent_staff
):
    foreign = CompanyFactory(verification_status=Company.Verification.PENDING)
    client.force_login(agent_staff)

    _action(client, "approve_selected", [foreign])

    foreign.refresh_from_db()
    assert foreign.verification_status == Company.Verification.PENDING


def test_the_queue_filters_by_status_and_links_the_licence(
    client, pending, agent_staff
):
    from django.core.files.base import ContentFile

    from accounts.models import BusinessLicence

    licence = BusinessLicence(
        company=pending, original_name="l.png", content_type="image/png", size=9
    )
    licence.file.save("l.png", ContentFile(b"\x89PNG\r\n\x1a\n0"), save=True)
    client.force_login(agent_staff)

    queue = client.get(
        reverse("admin:accounts_company_changelist"),
        {"verification_status__exact": "pending"},
    )
    change = client.get(reverse("admin:accounts_company_change", args=[pending.pk]))
    streamed = client.get(reverse("accounts:licence", args=[licence.pk]))

    assert list(queue.context["cl"].queryset) == [pending]
    licence_url = reverse("accounts:licence", args=[licence.pk])
    assert licence_url in queue.content.decode()
    assert licence_url in change.content.decode()
    assert streamed.status_code == 200
    assert streamed["Content-Type"] == "image/png"
