"""Authentication hardening not covered by tests/accounts: sessions end on
deactivation, reset links are short-lived, invitations reveal no accounts.

(Lockout per account+IP, session rotation on login, sessions ended by a
password change or reset, single-use reset links and a reset form that
answers the same for every address are in tests/accounts.)
"""

import datetime as dt
import re

import pytest
from django.conf import settings
from django.contrib.auth.tokens import PasswordResetTokenGenerator
from django.contrib.sessions.models import Session
from django.test import Client
from django.urls import reverse
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode

from accounts import services
from accounts.models import User
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_deactivation_deletes_every_session_of_the_user(company, owner):
    member = UserFactory(company=company, role=User.Role.MEMBER)
    laptop, phone = Client(), Client()
    laptop.force_login(member)
    phone.force_login(member)
    others = Client()
    others.force_login(owner)
    assert laptop.get(reverse("accounts:settings")).status_code == 200

    services.user_set_active(user=member, active=False, by=owner)
    # Even if the account is switched back on, the old sessions stay dead.
    services.user_set_active(user=member, active=True, by=owner)

    assert laptop.get(reverse("accounts:settings")).status_code == 302
    assert phone.get(reverse("accounts:settings")).status_code == 302
    assert others.get(reverse("accounts:settings")).status_code == 200
    assert Session.objects.count() == 1


def test_deactivating_from_the_settings_page_logs_the_user_out(client, company, owner):
    member = UserFactory(company=company, role=User.Role.MEMBER)
    theirs = Client()
    theirs.force_login(member)
    client.force_login(owner)

    client.post(reverse("accounts:user_active", args=[member.pk]), {"active": "0"})

    assert theirs.get(reverse("accounts:settings")).status_code == 302


class _MadeAt(PasswordResetTokenGenerator):
    def __init__(self, when: dt.datetime):
        super().__init__()
        self.when = when

    def _now(self):
        return self.when


def _reset_page(client, user, *, age: dt.timedelta):
    token = _MadeAt(dt.datetime.now() - age).make_token(user)
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    response = client.get(
        reverse("accounts:password_reset_confirm", args=[uid, token]), follow=True
    )
    return response.context["validlink"]


def test_reset_links_live_at_most_an_hour(owner):
    timeout = dt.timedelta(seconds=settings.PASSWORD_RESET_TIMEOUT)

    assert timeout <= dt.timedelta(hours=1)
    assert _reset_page(Client(), owner, age=timeout - dt.timedelta(minutes=2))
    assert not _reset_page(Client(), owner, age=timeout + dt.timedelta(minutes=2))


def test_a_reset_link_dies_when_the_user_logs_in_meanwhile(owner):
    # The token hashes last_login: using the account invalidates old links.
    token = PasswordResetTokenGenerator().make_token(owner)
    uid = urlsafe_base64_encode(force_bytes(owner.pk))
    client = Client()
    client.post(
        reverse("accounts:login"),
        {"username": owner.email, "password": "correct horse battery 400"},
    )

    response = Client().get(
        reverse("accounts:password_reset_confirm", args=[uid, token]), follow=True
    )

    assert response.context["validlink"] is False


def _without_csrf(content: bytes) -> bytes:
    return re.sub(rb'value="[A-Za-z0-9]{64}"', b"", content)


def test_the_invitation_form_answers_the_same_for_an_existing_account(
    client, owner, django_capture_on_commit_callbacks
):
    existing = UserFactory()
    client.force_login(owner)

    def invite(email):
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(
                reverse("accounts:invite"),
                {"email": email, "role": "member"},
                follow=True,
            )
        page = response.content.decode().replace(email, "EMAIL")
        return (
            response.status_code,
            [str(m).replace(email, "EMAIL") for m in response.context["messages"]],
            page.count("EMAIL"),
        )

    assert invite(existing.email) == invite("nobody-yet@example.cn")
