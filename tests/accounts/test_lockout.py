"""Brute-force protection per account and IP: an attacker cannot lock others out."""

import pytest
from django.conf import settings
from django.test import Client
from django.urls import reverse

from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db

ATTACKER_IP = "203.0.113.7"
VICTIM_IP = "198.51.100.20"


def _login(ip, email, password):
    return Client(REMOTE_ADDR=ip).post(
        reverse("accounts:login"), {"username": email, "password": password}
    )


def _attack(email):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _login(ATTACKER_IP, email, "wrong guess 123")


def test_the_attacker_is_locked_out_even_with_the_right_password(owner):
    _attack(owner.email)

    response = _login(ATTACKER_IP, owner.email, PASSWORD)

    assert response.status_code == settings.AXES_HTTP_RESPONSE_CODE
    assert "accounts/locked_out.html" in [t.name for t in response.templates]


def test_the_victim_still_logs_in_from_another_ip(owner):
    _attack(owner.email)

    response = _login(VICTIM_IP, owner.email, PASSWORD)

    assert response.status_code == 302
    assert response["Location"] == reverse(settings.LOGIN_REDIRECT_URL)


def test_changing_the_case_of_the_email_buys_no_extra_guesses(owner):
    _attack(owner.email.upper())

    response = _login(ATTACKER_IP, owner.email, PASSWORD)

    assert response.status_code == settings.AXES_HTTP_RESPONSE_CODE


def test_failures_below_the_limit_do_not_lock(owner):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        _login(ATTACKER_IP, owner.email, "wrong guess 123")

    assert _login(ATTACKER_IP, owner.email, PASSWORD).status_code == 302
