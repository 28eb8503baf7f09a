"""Owners invite colleagues by email; the link expires and works once."""

import datetime as dt
import re

import pytest
from django.conf import settings
from django.core import mail
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from accounts import services
from accounts.models import Invitation, User
from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def invite(owner, django_capture_on_commit_callbacks):
    """An owner's invitation of ``email``; returns (invitation, accept URL)."""

    def make(email="colleague@example.cn", role=User.Role.FINANCE, now=None):
        with django_capture_on_commit_callbacks(execute=True):
            invitation, token = services.invitation_create(
                company=owner.company, by=owner, email=email, role=role, now=now
            )
        return invitation, reverse("accounts:invitation_accept", args=[token])

    return make


def _accept(client, url, name="李四"):
    return client.post(
        url, {"full_name": name, "password1": PASSWORD, "password2": PASSWORD}
    )


def test_owner_invites_from_the_settings_page_and_the_email_has_the_link(
    client, owner, django_capture_on_commit_callbacks
):
    client.force_login(owner)

    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            reverse("accounts:invite"),
            {"email": "New.Colleague@Example.cn", "role": "member"},
        )

    invitation = Invitation.objects.get()
    assert invitation.email == "new.colleague@example.cn"
    validity = invitation.expires_at - invitation.created_at
    assert abs(validity - dt.timedelta(days=settings.HOTLINE_INVITATION_DAYS)) < (
        dt.timedelta(seconds=5)
    )
    message = mail.outbox[0]
    assert message.to == ["new.colleague@example.cn"]
    token = re.search(r"/accounts/invitations/([^/\s]+)/", message.body)[1]
    # Only a hash of the token is stored.
    assert invitation.token != token
    assert invitation.token == services.invitation_token_hash(token)


def test_accepting_creates_the_user_in_that_company_with_that_role_and_logs_in(
    client, owner, invite
):
    invitation, url = invite()

    response = _accept(client, url)

    assert response["Location"] == reverse("dashboard")
    user = User.objects.get(email="colleague@example.cn")
    assert user.company == owner.company
    assert user.role == User.Role.FINANCE
    assert client.get(reverse("dashboard")).context["user"] == user
    invitation.refresh_from_db()
    assert invitation.accepted_at is not None


def test_an_expired_link_says_so_and_creates_nothing(client, invite):
    sent = timezone.now() - dt.timedelta(days=settings.HOTLINE_INVITATION_DAYS + 1)
    _, url = invite(now=sent)

    page = client.get(url)
    response = _accept(client, url)

    assert page.status_code == response.status_code == 410
    assert page.context["state"] == "expired"
    assert not User.objects.filter(email="colleague@example.cn").exists()


def test_a_link_works_until_just_before_it_expires(client, invite):
    sent = timezone.now() - dt.timedelta(
        days=settings.HOTLINE_INVITATION_DAYS, seconds=-60
    )
    _, url = invite(now=sent)

    response = _accept(client, url)

    assert response.status_code == 302


def test_a_used_link_says_so(client, invite):
    _, url = invite()
    _accept(client, url)

    page = Client().get(url)

    assert page.status_code == 410
    assert page.context["state"] == "accepted"


def test_a_revoked_link_says_so(client, owner, invite):
    invitation, url = invite()
    services.invitation_revoke(invitation=invitation, by=owner)

    page = client.get(url)

    assert page.status_code == 410
    assert page.context["state"] == "revoked"


def test_an_unknown_link_is_a_404_with_a_message(client):
    page = client.get(reverse("accounts:invitation_accept", args=["nope"]))

    assert page.status_code == 404
    assert page.context["problem"]


def test_a_new_invitation_replaces_the_open_one_for_the_same_address(invite):
    first, first_url = invite()
    invite()

    first.refresh_from_db()
    assert first.revoked_at is not None
    assert Client().get(first_url).status_code == 410


def test_inviting_someone_who_has_an_account_reveals_nothing_and_adds_no_user(
    client, owner, invite
):
    existing = UserFactory()

    _invitation, url = invite(email=existing.email)
    response = _accept(Client(), url)

    # The owner saw "sent" as for anyone; the link tells its owner to log in.
    assert response.status_code == 410
    assert User.objects.filter(email__iexact=existing.email).count() == 1
    assert User.objects.get(email__iexact=existing.email).company_id != (
        owner.company_id
    )


def test_only_an_owner_of_the_company_can_invite(company):
    finance = UserFactory(company=company, role=User.Role.FINANCE)

    with pytest.raises(services.PermissionDenied):
        services.invitation_create(
            company=company, by=finance, email="x@example.cn", role="member"
        )
