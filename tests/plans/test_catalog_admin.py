"""The catalog in the back office: agent staff edit it; plans in use stay."""

from decimal import Decimal

import pytest
from django.contrib.messages import get_messages
from django.db.models import ProtectedError
from django.urls import reverse
from django.utils import translation

from plans.models import (
    CarrierBlock,
    CatalogSettings,
    Holiday,
    PhoneNumber,
    Plan,
    TaxRate,
    ValueAddedService,
    VanityGrade,
)
from tests.factories import (
    PhoneNumberFactory,
    PlanFactory,
    SubscriptionFactory,
    VanityGradeFactory,
)

pytestmark = pytest.mark.django_db


def url(model, view, *args):
    opts = model._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_{view}", args=args)


@pytest.fixture
def staff_client(client, agent_staff):
    client.force_login(agent_staff)
    client.cookies["hotline400_language"] = "en"
    return client


@pytest.fixture(autouse=True)
def _english():
    with translation.override("en"):
        yield


def messages_of(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


@pytest.mark.parametrize(
    "model",
    [
        TaxRate,
        CatalogSettings,
        Holiday,
        CarrierBlock,
        ValueAddedService,
        Plan,
        VanityGrade,
        PhoneNumber,
    ],
)
def test_agent_staff_can_open_every_catalog_list_and_add_form(staff_client, model):
    assert staff_client.get(url(model, "changelist")).status_code == 200
    assert staff_client.get(url(model, "add")).status_code == 200


def test_agent_staff_can_edit_a_plan(staff_client):
    plan = PlanFactory(code="m199")
    data = {
        "code": "m199",
        "name_zh": "包月199",
        "name_en": "Monthly 199",
        "is_active": "on",
        "sort_order": "1",
        "term_months": "1",
        "price": "219.00",
        "included_minutes": "800",
        "rate_inbound_peak": "0.2200",
        "rate_inbound_offpeak": "0.1600",
        "rate_outbound": "0.1800",
        "included_answer_numbers": "1",
        "description_zh": "",
        "description_en": "",
    }
    response = staff_client.post(url(Plan, "change", plan.pk), data)
    assert response.status_code == 302
    plan.refresh_from_db()
    assert plan.price == Decimal("219.00")


# --- plans with subscribers ------------------------------------------------------


def test_a_plan_with_subscribers_cannot_be_deleted_from_the_admin(staff_client):
    plan = PlanFactory(code="in-use")
    SubscriptionFactory(plan=plan)
    page = staff_client.get(url(Plan, "delete", plan.pk))
    assert page.status_code == 302
    assert page.url == url(Plan, "change", plan.pk)
    response = staff_client.post(url(Plan, "delete", plan.pk), {"post": "yes"})
    assert response.status_code == 302
    assert Plan.objects.filter(pk=plan.pk).exists()
    assert any(
        "has subscribers and cannot be deleted" in m for m in messages_of(response)
    )


def test_bulk_delete_refuses_when_any_plan_has_subscribers(staff_client):
    used = PlanFactory(code="used")
    unused = PlanFactory(code="unused")
    SubscriptionFactory(plan=used)
    response = staff_client.post(
        url(Plan, "changelist"),
        {
            "action": "delete_unused_plans",
            "_selected_action": [used.pk, unused.pk],
            "post": "yes",
        },
    )
    assert response.status_code == 302
    assert Plan.objects.filter(pk__in=[used.pk, unused.pk]).count() == 2
    assert any(
        "Nothing was deleted: used have subscribers" in m for m in messages_of(response)
    )


def test_a_plan_without_subscribers_can_be_deleted(staff_client):
    plan = PlanFactory(code="never-sold")
    response = staff_client.post(url(Plan, "delete", plan.pk), {"post": "yes"})
    assert response.status_code == 302
    assert not Plan.objects.filter(pk=plan.pk).exists()


def test_a_plan_with_subscribers_can_be_deactivated(staff_client):
    plan = PlanFactory(code="retiring")
    SubscriptionFactory(plan=plan)
    staff_client.post(
        url(Plan, "changelist"),
        {"action": "deactivate_plans", "_selected_action": [plan.pk]},
    )
    plan.refresh_from_db()
    assert plan.is_active is False


def test_the_database_protects_a_plan_in_use_as_well():
    plan = PlanFactory()
    SubscriptionFactory(plan=plan)
    with pytest.raises(ProtectedError):
        plan.delete()


def test_the_plan_list_shows_the_subscription_count(staff_client):
    plan = PlanFactory(code="popular")
    SubscriptionFactory(plan=plan)
    SubscriptionFactory(plan=plan)
    page = staff_client.get(url(Plan, "changelist"))
    row = next(r for r in page.context["cl"].result_list if r.pk == plan.pk)
    assert row._subscribers == 2


# --- vanity grades -----------------------------------------------------------------


def grade_form(**overrides):
    data = {
        "code": "supreme",
        "name_zh": "至尊",
        "name_en": "Supreme",
        "selection_fee": "20000.00",
        "min_monthly": "299.00",
        "priority": "900",
        "rules": '[{"type": "repeat", "length": 4}]',
        "is_active": "on",
    }
    return data | overrides


def test_a_grade_with_bad_rules_is_refused_with_the_paths(staff_client):
    response = staff_client.post(
        url(VanityGrade, "add"),
        grade_form(rules='[{"type": "repeat", "length": 9}, {"type": "magic"}]'),
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors["rules"]
    assert errors[0] == "rules[0].length: must be a whole number from 2 to 7"
    assert errors[1].startswith("rules[1].type: unknown rule type 'magic'")
    assert not VanityGrade.objects.exists()


def test_changing_a_grade_fee_updates_its_numbers(staff_client):
    grade = VanityGradeFactory(
        code="supreme", priority=900, rules=[{"type": "repeat", "length": 4}]
    )
    number = PhoneNumberFactory(grade=grade, selection_fee=grade.selection_fee)
    response = staff_client.post(
        url(VanityGrade, "change", grade.pk), grade_form(selection_fee="18888.00")
    )
    assert response.status_code == 302
    number.refresh_from_db()
    assert number.selection_fee == Decimal("18888.00")
    assert not any("regrade_numbers" in m for m in messages_of(response))


def test_changing_grade_rules_asks_for_a_regrade(staff_client):
    grade = VanityGradeFactory(
        code="supreme", priority=900, rules=[{"type": "repeat", "length": 4}]
    )
    response = staff_client.post(
        url(VanityGrade, "change", grade.pk),
        grade_form(rules='[{"type": "repeat", "length": 5}]'),
    )
    grade.refresh_from_db()
    assert grade.rules == [{"type": "repeat", "length": 5}]
    assert any("regrade_numbers" in m for m in messages_of(response))


# --- 400 numbers ------------------------------------------------------------------


@pytest.fixture
def blocks():
    CarrierBlock.objects.create(prefix="4008", carrier="telecom")
    return VanityGradeFactory(
        code="supreme",
        priority=900,
        selection_fee=Decimal("20000.00"),
        rules=[{"type": "repeat", "length": 4}],
    )


def test_adding_a_number_in_any_format_canonicalises_and_grades_it(
    staff_client, blocks
):
    response = staff_client.post(url(PhoneNumber, "add"), {"number": "400 810 8888"})
    assert response.status_code == 302
    number = PhoneNumber.objects.get()
    assert (number.number, number.carrier, number.grade) == (
        "4008108888",
        "telecom",
        blocks,
    )
    assert number.selection_fee == Decimal("20000.00")


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("4.008E+09", "is not a 400 number"),
        ("4003108888", "No carrier block covers 400-310-8888"),
    ],
)
def test_adding_a_bad_number_shows_why(staff_client, blocks, text, error):
    response = staff_client.post(url(PhoneNumber, "add"), {"number": text})
    assert response.status_code == 200
    assert error in str(response.context["adminform"].form.errors["number"])
    assert not PhoneNumber.objects.exists()


@pytest.mark.parametrize("term", ["400-810-8888", "4008108888", "400 810 8888", "8888"])
def test_numbers_are_found_by_any_format(staff_client, term):
    wanted = PhoneNumberFactory(number="4008108888")
    PhoneNumberFactory(number="4008101234")
    page = staff_client.get(url(PhoneNumber, "changelist"), {"q": term})
    assert [n.pk for n in page.context["cl"].result_list] == [wanted.pk]


def test_the_number_list_shows_why_a_number_got_its_grade(staff_client):
    grade = VanityGradeFactory(code="supreme")
    PhoneNumberFactory(
        number="4008108888", grade=grade, grade_reason="尾号 8888（AAAA）"
    )
    page = staff_client.get(url(PhoneNumber, "changelist"))
    html = page.content.decode()
    assert "400-810-8888" in html
    assert "尾号 8888（AAAA）" in html


@pytest.mark.parametrize(
    "query", [{"status__exact": "available"}, {"carrier__exact": "telecom"}]
)
def test_the_number_list_filters(staff_client, query):
    PhoneNumberFactory(number="4008100001")
    PhoneNumberFactory(number="4008100002", status="held", carrier="mobile")
    page = staff_client.get(url(PhoneNumber, "changelist"), query)
    assert [n.number for n in page.context["cl"].result_list] == ["4008100001"]


def test_the_regrade_action_leaves_held_numbers_alone(staff_client, blocks):
    free = PhoneNumberFactory(number="4008108888")
    held = PhoneNumberFactory(number="4008107777", status="held")
    staff_client.post(
        url(PhoneNumber, "changelist"),
        {"action": "regrade_selected", "_selected_action": [free.pk, held.pk]},
    )
    free.refresh_from_db()
    held.refresh_from_db()
    assert free.grade == blocks
    assert held.grade is None


def test_a_number_out_of_stock_cannot_be_deleted_or_have_its_status_edited(
    staff_client,
):
    held = PhoneNumberFactory(number="4008100001", status="held")
    free = PhoneNumberFactory(number="4008100002")
    assert staff_client.get(url(PhoneNumber, "delete", held.pk)).status_code == 403
    page = staff_client.get(url(PhoneNumber, "change", held.pk))
    assert "status" not in page.context["adminform"].form.fields
    selection = {"action": "delete_selected", "_selected_action": [held.pk, free.pk]}
    confirm = staff_client.post(url(PhoneNumber, "changelist"), selection)
    assert confirm.status_code == 200  # the confirmation page, for the free one
    assert any("1 number was kept" in m for m in messages_of(confirm))
    response = staff_client.post(
        url(PhoneNumber, "changelist"), selection | {"post": "yes"}
    )
    assert response.status_code == 302
    assert list(PhoneNumber.objects.values_list("number", flat=True)) == ["4008100001"]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"peak_weekdays": "[1, 2, 8]"}, "peak_weekdays"),
        ({"peak_weekdays": '"Mon-Fri"'}, "peak_weekdays"),
        ({"peak_weekdays": "[1, 1]"}, "peak_weekdays"),
        ({"peak_start": "20:00", "peak_end": "08:00"}, "peak_end"),
    ],
)
def test_catalog_settings_refuse_impossible_peak_hours(staff_client, changes, field):
    row = CatalogSettings.load()
    data = {
        "extra_answer_number_fee": "10.00",
        "peak_start": "08:00",
        "peak_end": "20:00",
        "peak_weekdays": "[1, 2, 3, 4, 5]",
    } | changes
    response = staff_client.post(url(CatalogSettings, "change", row.pk), data)
    assert response.status_code == 200
    assert field in response.context["adminform"].form.errors
    row.refresh_from_db()
    assert row.peak_weekdays == [1, 2, 3, 4, 5]


def test_catalog_settings_accept_a_six_day_week(staff_client):
    row = CatalogSettings.load()
    response = staff_client.post(
        url(CatalogSettings, "change", row.pk),
        {
            "extra_answer_number_fee": "12.00",
            "peak_start": "09:00",
            "peak_end": "21:00",
            "peak_weekdays": "[6, 1, 2, 3, 4, 5]",
        },
    )
    assert response.status_code == 302
    row.refresh_from_db()
    assert row.peak_weekdays == [1, 2, 3, 4, 5, 6]
    assert row.extra_answer_number_fee == Decimal("12.00")
