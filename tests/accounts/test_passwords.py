"""Password reset without account enumeration; sessions end on a new password."""

import re

import pytest
from django.core import mail
from django.test import Client
from django.urls import reverse

from tests.factories import PASSWORD, UserFactory

pytestmark = pytest.mark.django_db

NEW_PASSWORD = "a brand new passphrase 2026"


@pytest.fixture
def reset(django_capture_on_commit_callbacks):
    """Ask for a reset; the view enqueues the email after commit."""

    def post(client, email):
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(reverse("accounts:password_reset"), {"email": email})

    return post


def _without_csrf(content: bytes) -> bytes:
    return re.sub(rb'name="csrfmiddlewaretoken" value="[^"]+"', b"", content)


def test_reset_answers_the_same_whether_or_not_the_email_has_an_account(owner, reset):
    known = reset(Client(), owner.email)
    unknown = reset(Client(), "nobody-here@example.cn")
    known_page = Client().get(known["Location"])
    unknown_page = Client().get(unknown["Location"])

    assert known.status_code == unknown.status_code == 302
    assert known["Location"] == unknown["Location"]
    assert known.content == unknown.content
    assert _without_csrf(known_page.content) == _without_csrf(unknown_page.content)
    # Only the real account gets an email.
    assert [m.to for m in mail.outbox] == [[owner.email]]


def test_reset_of_an_inactive_account_answers_the_same_and_sends_nothing(client, reset):
    inactive = UserFactory(is_active=False)

    response = reset(client, inactive.email)

    assert response["Location"] == reverse("accounts:password_reset_done")
    assert mail.outbox == []


def test_the_reset_email_is_html_and_text_in_the_users_language(client, reset):
    user = UserFactory(language="en")

    reset(client, user.email.upper())

    message = mail.outbox[0]
    assert message.subject == "Reset your Hotline400 password"
    assert message.alternatives[0][1] == "text/html"
    assert "/accounts/password/reset/" in message.body


def _reset_link(message) -> str:
    return re.search(r"https?://[^/\s]+(/accounts/password/reset/\S+/)", message.body)[
        1
    ]


def test_a_reset_logs_out_every_other_session(owner, reset):
    elsewhere = Client()
    elsewhere.force_login(owner)
    assert elsewhere.get(reverse("accounts:settings")).status_code == 200
    browser = Client()
    reset(browser, owner.email)
    form_url = browser.get(_reset_link(mail.outbox[0]))["Location"]

    done = browser.post(
        form_url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}
    )

    assert done["Location"] == reverse("accounts:password_reset_complete")
    assert elsewhere.get(reverse("accounts:settings")).status_code == 302
    owner.refresh_from_db()
    assert owner.check_password(NEW_PASSWORD)


def test_a_used_reset_link_cannot_be_used_again(owner, reset):
    browser = Client()
    reset(browser, owner.email)
    link = _reset_link(mail.outbox[0])
    form_url = browser.get(link)["Location"]
    browser.post(
        form_url, {"new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD}
    )

    again = Client().get(link, follow=True)

    assert again.context["validlink"] is False


def test_changing_the_password_keeps_this_session_and_ends_the_others(owner):
    here, elsewhere = Client(), Client()
    here.force_login(owner)
    elsewhere.force_login(owner)

    response = here.post(
        reverse("accounts:password_change"),
        {
            "old_password": PASSWORD,
            "new_password1": NEW_PASSWORD,
            "new_password2": NEW_PASSWORD,
        },
    )

    assert response["Location"] == reverse("accounts:password_change_done")
    assert here.get(reverse("accounts:settings")).status_code == 200
    assert elsewhere.get(reverse("accounts:settings")).status_code == 302


def test_logging_in_rotates_the_session_key(client, owner):
    client.get(reverse("accounts:login"))
    client.session.save()
    before = client.session.session_key

    client.post(
        reverse("accounts:login"), {"username": owner.email, "password": PASSWORD}
    )

    assert client.session.session_key != before


def test_logout_needs_a_post(client, owner):
    client.force_login(owner)

    assert client.get(reverse("accounts:logout")).status_code == 405
    client.post(reverse("accounts:logout"))
    assert client.get(reverse("accounts:settings")).status_code == 302
