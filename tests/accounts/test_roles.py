"""What owners, finance and members may see and do in the company settings."""

import pytest
from django.urls import reverse

from accounts.models import Company, Invitation, User
from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def finance(company):
    return UserFactory(company=company, role=User.Role.FINANCE)


@pytest.fixture
def member(company):
    return UserFactory(company=company, role=User.Role.MEMBER)


def test_owner_sees_users_invitations_and_the_edit_link(client, owner):
    client.force_login(owner)

    page = client.get(reverse("accounts:settings"))

    assert page.status_code == 200
    assert owner.email in page.content.decode()
    assert page.context["team"] is not None
    assert page.context["invite_form"] is not None
    assert reverse("accounts:company_edit") in page.content.decode()


def test_finance_sees_company_users_and_billing_email_read_only(client, owner, finance):
    client.force_login(finance)

    page = client.get(reverse("accounts:settings"))

    content = page.content.decode()
    assert page.status_code == 200
    assert finance.company.billing_email in content
    assert owner.email in content
    assert "invite_form" not in page.context
    assert reverse("accounts:company_edit") not in content
    assert reverse("accounts:user_role", args=[owner.pk]) not in content


def test_member_sees_company_details_but_not_the_team(client, owner, member):
    client.force_login(member)

    page = client.get(reverse("accounts:settings"))

    content = page.content.decode()
    assert page.status_code == 200
    assert member.company.name in content
    assert owner.email not in content
    assert "team" not in page.context


@pytest.mark.parametrize("role", [User.Role.FINANCE, User.Role.MEMBER])
def test_only_owners_reach_owner_pages(client, company, owner, role):
    other = UserFactory(company=company, role=role)
    licence_owner_pages = [
        ("get", reverse("accounts:company_edit"), {}),
        ("post", reverse("accounts:company_edit"), {"address": "x"}),
        ("get", reverse("accounts:licence_upload"), {}),
        ("post", reverse("accounts:invite"), {"email": "a@b.cn", "role": "owner"}),
        ("post", reverse("accounts:user_role", args=[owner.pk]), {"role": "member"}),
        ("post", reverse("accounts:user_active", args=[owner.pk]), {"active": "0"}),
    ]
    client.force_login(other)

    statuses = [
        getattr(client, method)(url, data).status_code
        for method, url, data in licence_owner_pages
    ]

    assert statuses == [404] * len(licence_owner_pages)
    owner.refresh_from_db()
    assert owner.role == User.Role.OWNER and owner.is_active
    assert Invitation.objects.count() == 0


def test_agent_staff_without_a_company_get_404_on_company_pages(client, agent_staff):
    client.force_login(agent_staff)

    assert client.get(reverse("accounts:settings")).status_code == 404


def test_owner_changes_a_role(client, owner, member):
    client.force_login(owner)

    client.post(reverse("accounts:user_role", args=[member.pk]), {"role": "finance"})

    member.refresh_from_db()
    assert member.role == User.Role.FINANCE


def test_the_last_owner_cannot_be_demoted_or_deactivated(client, owner):
    client.force_login(owner)

    client.post(reverse("accounts:user_role", args=[owner.pk]), {"role": "member"})
    client.post(reverse("accounts:user_active", args=[owner.pk]), {"active": "0"})

    owner.refresh_from_db()
    assert owner.role == User.Role.OWNER
    assert owner.is_active


def test_one_of_two_owners_can_step_down(client, company, owner):
    second = UserFactory(company=company, role=User.Role.OWNER)
    client.force_login(owner)

    client.post(reverse("accounts:user_role", args=[second.pk]), {"role": "member"})

    second.refresh_from_db()
    assert second.role == User.Role.MEMBER


def test_a_deactivated_user_can_no_longer_log_in(client, owner, member):
    client.force_login(owner)
    client.post(reverse("accounts:user_active", args=[member.pk]), {"active": "0"})
    client.logout()

    response = client.post(
        reverse("accounts:login"), {"username": member.email, "password": PASSWORD}
    )

    assert response.status_code == 200
    assert not response.context["user"].is_authenticated


def test_owner_edits_details_and_the_phone_is_stored_in_e164(client, company, owner):
    client.force_login(owner)

    response = client.post(
        reverse("accounts:company_edit"),
        {
            "name": "改名企图",
            "uscc": company.uscc,
            "address": "上海市浦东新区世纪大道100号",
            "billing_email": "AP@Example.cn",
            "contact_phone": "021-6888 1234",
            "language": "en",
        },
    )

    assert response.status_code == 302
    company.refresh_from_db()
    assert company.address == "上海市浦东新区世纪大道100号"
    assert company.billing_email == "ap@example.cn"
    assert company.contact_phone == "+862168881234"
    assert company.language == "en"
    # Verified: the name is fixed.
    assert company.name != "改名企图"


def test_an_unverified_company_may_still_correct_its_name(client, company, owner):
    company.verification_status = Company.Verification.PENDING
    company.save()
    client.force_login(owner)

    client.post(
        reverse("accounts:company_edit"),
        {
            "name": "更正后的名称有限公司",
            "uscc": company.uscc,
            "address": company.address,
            "billing_email": company.billing_email,
            "contact_phone": company.contact_phone,
            "language": "zh-hans",
        },
    )

    company.refresh_from_db()
    assert company.name == "更正后的名称有限公司"


def test_a_bad_phone_is_shown_and_nothing_changes(client, company, owner):
    client.force_login(owner)

    response = client.post(
        reverse("accounts:company_edit"),
        {
            "address": "新地址",
            "billing_email": company.billing_email,
            "contact_phone": "12345",
            "language": "zh-hans",
        },
    )

    assert response.status_code == 200
    assert "contact_phone" in response.context["form"].errors
    company.refresh_from_db()
    assert company.address != "新地址"
