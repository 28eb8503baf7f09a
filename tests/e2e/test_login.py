"""The first steps of every journey: log in, see the company, switch language."""

import pytest

from tests.factories import PASSWORD, UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

GREETING = {"zh-hans": "欢迎", "en": "Welcome"}


def test_owner_logs_in_and_sees_the_portal_in_their_language(
    page, language, screenshot
):
    owner = UserFactory(role="owner")

    page.goto("/accounts/login/")
    screenshot("login")
    page.fill("#id_username", owner.email)
    page.fill("#id_password", PASSWORD)
    page.get_by_role(
        "button", name="登录" if language == "zh-hans" else "Log in"
    ).click()

    page.wait_for_url("**/")
    assert GREETING[language] in page.inner_text("h1")
    assert owner.company.name in page.inner_text("header")
    screenshot("overview")


def test_wrong_password_keeps_the_email_and_says_what_is_wrong(page, language):
    owner = UserFactory(role="owner")

    page.goto("/accounts/login/")
    page.fill("#id_username", owner.email)
    page.fill("#id_password", "not the password")
    page.locator("form:not(.langswitch) button[type=submit]").click()

    assert page.input_value("#id_username") == owner.email
    assert page.locator(".form-errors").is_visible()
