"""`make run` relies on seed_demo: it must work and be idempotent."""

from io import StringIO

import pytest
from django.apps import apps
from django.core.management import call_command

pytestmark = pytest.mark.django_db


def row_counts() -> dict[str, int]:
    return {
        m._meta.label: m.objects.count()
        for m in apps.get_models()
        if m._meta.app_label in {"accounts", "plans", "billing"}
    }


def test_seed_demo_twice_changes_nothing_and_ends_with_the_logins():
    first = StringIO()
    call_command("seed_demo", stdout=first)
    after_first = row_counts()

    second = StringIO()
    call_command("seed_demo", stdout=second)

    assert row_counts() == after_first
    assert after_first["accounts.Company"] >= 3
    assert after_first["plans.PhoneNumber"] == 10_000
    assert after_first["plans.Subscription"] >= 3
    assert after_first["billing.Invoice"] >= 1
    tail = second.getvalue().strip().splitlines()[-8:]
    assert tail[0].startswith("Demo logins")
    assert any("owner@pengcheng.example.cn" in line for line in tail)
