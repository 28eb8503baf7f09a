"""A user of company A gets 404 for every company-B URL of the accounts app."""

import datetime as dt

import pytest
from django.core.files.base import ContentFile
from django.urls import URLPattern, reverse
from django.utils import timezone

from accounts.models import BusinessLicence, Invitation, User
from tests.factories import CompanyFactory, UserFactory

pytestmark = pytest.mark.django_db


def _object_url_names() -> set[str]:
    """Names of accounts URLs that address one object by id."""
    from accounts import urls

    return {
        p.name
        for p in urls.urlpatterns
        if isinstance(p, URLPattern) and "pk" in p.pattern.converters
    }


@pytest.fixture
def company_b():
    company = CompanyFactory()
    owner = UserFactory(company=company, role=User.Role.OWNER)
    member = UserFactory(company=company, role=User.Role.MEMBER)
    licence = BusinessLicence(
        company=company,
        original_name="b.pdf",
        content_type="application/pdf",
        size=9,
        uploaded_by=owner,
    )
    licence.file.save("b.pdf", ContentFile(b"%PDF-1.4\n"), save=True)
    invitation = Invitation.objects.create(
        company=company,
        email="new@b.example.cn",
        role="member",
        token="b-token-hash",
        expires_at=timezone.now() + dt.timedelta(days=3),
    )
    return {
        "company": company,
        "owner": owner,
        "member": member,
        "licence": licence,
        "invitation": invitation,
    }


def test_owner_of_a_gets_404_for_every_object_url_of_b(client, owner, company_b):
    # url name -> (B's object id, the method the URL answers to)
    targets = {
        "licence": (company_b["licence"].pk, "get"),
        "user_role": (company_b["member"].pk, "post"),
        "user_active": (company_b["member"].pk, "post"),
        "invitation_revoke": (company_b["invitation"].pk, "post"),
    }
    assert set(targets) == _object_url_names(), (
        "A new accounts URL takes an object id: add it to this test's targets."
    )
    client.force_login(owner)

    statuses = {
        name: getattr(client, method)(
            reverse(f"accounts:{name}", args=[pk]), {"role": "owner", "active": "0"}
        ).status_code
        for name, (pk, method) in targets.items()
    }

    assert statuses == dict.fromkeys(targets, 404)
    member = company_b["member"]
    member.refresh_from_db()
    assert member.role == User.Role.MEMBER and member.is_active
    company_b["invitation"].refresh_from_db()
    assert company_b["invitation"].revoked_at is None


def test_pages_without_an_id_only_ever_show_the_users_own_company(
    client, owner, company_b
):
    client.force_login(owner)

    content = client.get(reverse("accounts:settings")).content.decode()

    assert company_b["company"].name not in content
    assert company_b["member"].email not in content
    assert company_b["invitation"].email not in content


def test_agent_staff_of_another_agent_cannot_open_a_licence(
    client, agent_staff, company_b
):
    client.force_login(agent_staff)

    response = client.get(reverse("accounts:licence", args=[company_b["licence"].pk]))

    assert response.status_code == 404
