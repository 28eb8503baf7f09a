"""Subscriptions after checkout: activation in the back office, plan and
service changes from the 1st of next month, the forfeiture figure, ending,
quarantine and return to stock, and tenant isolation."""

import datetime as dt
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone, translation

from audit.models import AuditEvent
from plans import selectors, services
from plans.models import (
    AnswerNumber,
    CatalogSettings,
    PhoneNumber,
    Subscription,
    SubscriptionPlanPeriod,
    SubscriptionServicePeriod,
)
from plans.search import pattern_to_like
from plans.selectors import SearchCriteria, number_search
from plans.tasks import release_quarantined_numbers_task
from tests.factories import (
    AgentStaffFactory,
    CallRecordFactory,
    CompanyFactory,
    PlanFactory,
    SubscriptionFactory,
    TermPlanFactory,
    UserFactory,
    ValueAddedServiceFactory,
    ensure_catalog_basics,
    shanghai,
    stock_number,
)

D = dt.date


@pytest.fixture
def standard(db):
    ensure_catalog_basics()
    return PlanFactory(code="standard", price=Decimal("299.00"))


@pytest.fixture
def pending(company, owner, standard):
    hold = services.number_hold(
        company=company, number=stock_number("4008108888"), by=owner
    )
    return services.subscription_confirm(
        hold=hold,
        plan=standard,
        services=[ValueAddedServiceFactory(code="ivr")],
        answer_phones=["13800138000"],
        by=owner,
    )


# --- activation ---------------------------------------------------------------
def test_activation_dates_the_initial_periods(pending, agent_staff):
    services.subscription_activate(
        subscription=pending, on=D(2026, 3, 11), by=agent_staff
    )

    pending.refresh_from_db()
    assert pending.status == Subscription.Status.ACTIVE
    assert (pending.activated_on, pending.activated_by) == (D(2026, 3, 11), agent_staff)
    assert pending.plan_periods.get().start_date == D(2026, 3, 11)
    assert pending.service_periods.get().start_date == D(2026, 3, 11)
    assert pending.answer_numbers.get().start_date == D(2026, 3, 11)
    assert pending.number.status == PhoneNumber.Status.SUBSCRIBED


def test_activation_twice_is_refused(pending, agent_staff):
    services.subscription_activate(
        subscription=pending, on=D(2026, 3, 11), by=agent_staff
    )

    with pytest.raises(services.SubscriptionStateError):
        services.subscription_activate(
            subscription=pending, on=D(2026, 4, 1), by=agent_staff
        )

    pending.refresh_from_db()
    assert pending.activated_on == D(2026, 3, 11)


def test_an_unverified_company_is_not_activated(pending, agent_staff):
    pending.company.verification_status = "pending"
    pending.company.save(update_fields=["verification_status"])

    with pytest.raises(services.CompanyNotVerified):
        services.subscription_activate(
            subscription=pending, on=D(2026, 3, 11), by=agent_staff
        )


def test_agent_staff_activate_from_the_admin(client, pending, agent_staff):
    client.force_login(agent_staff)
    url = reverse("admin:plans_subscription_activate", args=[pending.pk])

    page = client.get(url)
    response = client.post(url, {"activated_on": "2026-03-11"})

    pending.refresh_from_db()
    assert page.status_code == 200
    assert response.status_code == 302
    assert pending.activated_on == D(2026, 3, 11)


def test_the_admin_action_activates_selected_subscriptions(
    client, pending, agent_staff
):
    client.force_login(agent_staff)
    url = reverse("admin:plans_subscription_changelist")
    form = {"action": "activate_selected", "_selected_action": [pending.pk]}

    ask = client.post(url, form)
    done = client.post(url, {**form, "apply": "1", "activated_on": "2026-04-01"})

    pending.refresh_from_db()
    assert ask.status_code == 200 and b"activated_on" in ask.content
    assert done.status_code == 302
    assert pending.activated_on == D(2026, 4, 1)


def test_staff_of_another_agent_cannot_see_or_activate(client, pending):
    client.force_login(AgentStaffFactory())

    url = reverse("admin:plans_subscription_activate", args=[pending.pk])
    change = reverse("admin:plans_subscription_change", args=[pending.pk])

    assert client.post(url, {"activated_on": "2026-03-11"}).status_code == 404
    assert client.get(change).status_code in (302, 404)
    pending.refresh_from_db()
    assert pending.activated_on is None


def test_admin_finds_a_subscription_by_number_as_people_type_it(
    client, pending, agent_staff
):
    client.force_login(agent_staff)

    response = client.get(
        reverse("admin:plans_subscription_changelist"), {"q": "400-810-8888"}
    )

    assert response.status_code == 200
    assert response.context["cl"].result_count == 1


# --- plan changes -------------------------------------------------------------
@pytest.fixture
def active(company, standard):
    return SubscriptionFactory(
        company=company, plan=standard, activated_on=D(2026, 3, 1)
    )


def periods(subscription):
    return list(
        SubscriptionPlanPeriod.objects.filter(subscription=subscription)
        .order_by("start_date")
        .values_list("plan__code", "start_date", "end_date")
    )


def test_a_plan_change_takes_effect_on_the_first_of_next_month(active, owner):
    premium = PlanFactory(code="premium", price=Decimal("599.00"))

    services.subscription_change_plan(
        subscription=active, plan=premium, by=owner, today=D(2026, 5, 14)
    )

    assert periods(active) == [
        ("standard", D(2026, 3, 1), D(2026, 5, 31)),
        ("premium", D(2026, 6, 1), None),
    ]


def test_a_second_change_replaces_the_scheduled_one(active, owner):
    premium = PlanFactory(code="premium")
    basic = PlanFactory(code="basic")
    services.subscription_change_plan(
        subscription=active, plan=premium, by=owner, today=D(2026, 5, 14)
    )

    services.subscription_change_plan(
        subscription=active, plan=basic, by=owner, today=D(2026, 5, 20)
    )

    assert periods(active) == [
        ("standard", D(2026, 3, 1), D(2026, 5, 31)),
        ("basic", D(2026, 6, 1), None),
    ]


def test_changing_back_to_the_current_plan_cancels_the_change(active, owner, standard):
    services.subscription_change_plan(
        subscription=active,
        plan=PlanFactory(code="premium"),
        by=owner,
        today=D(2026, 5, 14),
    )

    services.subscription_change_plan(
        subscription=active, plan=standard, by=owner, today=D(2026, 5, 15)
    )

    assert periods(active) == [("standard", D(2026, 3, 1), None)]


def test_before_activation_the_plan_is_simply_swapped(pending, owner):
    premium = PlanFactory(code="premium")

    services.subscription_change_plan(subscription=pending, plan=premium, by=owner)

    assert periods(pending) == [("premium", None, None)]


def test_services_change_from_the_first_of_next_month(active, owner):
    ivr = ValueAddedServiceFactory(code="ivr")
    recording = ValueAddedServiceFactory(code="recording")
    SubscriptionServicePeriod.objects.create(
        subscription=active, service=ivr, start_date=D(2026, 3, 1)
    )

    services.subscription_change_services(
        subscription=active, services=[recording], by=owner, today=D(2026, 5, 14)
    )

    rows = list(
        active.service_periods.order_by("service__code").values_list(
            "service__code", "start_date", "end_date"
        )
    )
    assert rows == [
        ("ivr", D(2026, 3, 1), D(2026, 5, 31)),
        ("recording", D(2026, 6, 1), None),
    ]

    services.subscription_change_services(
        subscription=active, services=[ivr], by=owner, today=D(2026, 5, 20)
    )

    rows = list(
        active.service_periods.values_list("service__code", "start_date", "end_date")
    )
    assert rows == [("ivr", D(2026, 3, 1), None)]


# --- forfeiture ---------------------------------------------------------------
@pytest.fixture
def on_term(company):
    ensure_catalog_basics()
    return SubscriptionFactory(
        company=company,
        plan=TermPlanFactory(code="term-3y"),
        activated_on=D(2026, 3, 11),
    )


def _call(subscription, when, pool):
    return CallRecordFactory(
        subscription=subscription,
        start_time=when,
        duration_seconds=pool * 60,
        billable_minutes=pool,
        pool_minutes=pool,
        charged_minutes=0,
        amount=Decimal("0"),
    )


def test_leaving_a_term_plan_forfeits_what_is_left_of_its_pool(on_term, company):
    _call(on_term, shanghai(2026, 3, 11, 9, 0), 700)
    _call(on_term, shanghai(2026, 5, 13, 23, 59), 500)
    _call(on_term, shanghai(2026, 5, 14, 8, 0), 40)  # today counts too

    forfeiture = selectors.term_forfeiture(
        company=company,
        subscription=on_term,
        leave_on=D(2026, 5, 31),
        today=D(2026, 5, 14),
    )

    assert forfeiture.minutes == 25000 - 1240
    assert forfeiture.term_end == D(2029, 3, 10)


def test_calls_of_the_previous_term_do_not_count(company):
    ensure_catalog_basics()
    sub = SubscriptionFactory(
        company=company,
        plan=TermPlanFactory(code="term-1y", term_months=12, included_minutes=5000),
        activated_on=D(2025, 3, 11),
    )
    _call(sub, shanghai(2026, 3, 10, 23, 0), 4000)  # last day of the first term
    _call(sub, shanghai(2026, 3, 11, 0, 5), 100)

    forfeiture = selectors.term_forfeiture(
        company=company, subscription=sub, leave_on=D(2026, 5, 31), today=D(2026, 5, 14)
    )

    assert forfeiture.minutes == 4900


def test_no_forfeiture_when_the_term_ends_with_the_month(company):
    ensure_catalog_basics()
    sub = SubscriptionFactory(
        company=company,
        plan=TermPlanFactory(code="term-1y", term_months=12),
        activated_on=D(2025, 6, 1),
    )

    assert (
        selectors.term_forfeiture(
            company=company,
            subscription=sub,
            leave_on=D(2026, 5, 31),
            today=D(2026, 5, 14),
        )
        is None
    )


def test_no_forfeiture_for_a_monthly_plan(active, company):
    assert (
        selectors.term_forfeiture(
            company=company,
            subscription=active,
            leave_on=D(2026, 5, 31),
            today=D(2026, 5, 14),
        )
        is None
    )


def test_change_page_states_the_minutes_forfeited_before_confirming(
    client, company, owner
):
    ensure_catalog_basics()
    today = timezone.localdate()
    sub = SubscriptionFactory(
        company=company,
        plan=TermPlanFactory(code="term-3y"),
        activated_on=today.replace(day=1) - dt.timedelta(days=40),
    )
    _call(sub, timezone.now() - dt.timedelta(days=1), 321)
    client.force_login(owner)
    client.cookies["hotline400_language"] = "en"

    response = client.get(reverse("plans:change_plan", args=[sub.pk]))

    body = response.content.decode()
    assert response.status_code == 200
    assert f"{25000 - 321} minutes as of today" in body
    assert "forfeited with no refund" in body


# --- ending, quarantine, back to stock ----------------------------------------
def test_ending_quarantines_the_number_then_it_returns_to_stock(
    settings, active, owner
):
    settings.HOTLINE_QUARANTINE_DAYS = 90
    services.subscription_change_plan(
        subscription=active,
        plan=PlanFactory(code="premium"),
        by=owner,
        today=D(2026, 5, 14),
    )

    services.subscription_end(subscription=active, by=owner, today=D(2026, 5, 20))

    active.refresh_from_db()
    number = PhoneNumber.objects.get(pk=active.number_id)
    assert (active.status, active.ended_on) == (
        Subscription.Status.ENDED,
        D(2026, 5, 20),
    )
    assert periods(active) == [("standard", D(2026, 3, 1), D(2026, 5, 20))]
    assert number.status == PhoneNumber.Status.QUARANTINE
    assert number.quarantine_until == D(2026, 8, 18)

    assert services.numbers_release_quarantine(today=D(2026, 8, 17)) == 0
    assert services.numbers_release_quarantine(today=D(2026, 8, 18)) == 1
    number.refresh_from_db()
    assert number.status == PhoneNumber.Status.AVAILABLE
    found = number_search(
        criteria=SearchCriteria(pattern=pattern_to_like(number.number))
    )
    assert [n.pk for n in found.numbers] == [number.pk]


def test_the_quarantine_task_returns_rested_numbers(db):
    rested = stock_number(
        "4008100001",
        status=PhoneNumber.Status.QUARANTINE,
        quarantine_until=timezone.localdate(),
    )
    resting = stock_number(
        "4008100002",
        status=PhoneNumber.Status.QUARANTINE,
        quarantine_until=timezone.localdate() + dt.timedelta(days=1),
    )

    release_quarantined_numbers_task.delay().get()

    rested.refresh_from_db()
    resting.refresh_from_db()
    assert rested.status == PhoneNumber.Status.AVAILABLE
    assert resting.status == PhoneNumber.Status.QUARANTINE


def test_cancelling_before_activation_gives_the_number_straight_back(pending, owner):
    services.subscription_end(subscription=pending, by=owner)

    pending.refresh_from_db()
    assert pending.status == Subscription.Status.CANCELLED
    assert pending.number.status == PhoneNumber.Status.AVAILABLE


def test_ending_from_the_portal_needs_the_confirmation(client, active, owner):
    client.force_login(owner)
    url = reverse("plans:end", args=[active.pk])

    unconfirmed = client.post(url, {})
    confirmed = client.post(url, {"confirm": "on"})

    active.refresh_from_db()
    assert unconfirmed.status_code == 200
    assert confirmed.status_code == 302
    assert active.status == Subscription.Status.ENDED


# --- pages and tenants ---------------------------------------------------------
@pytest.mark.parametrize(("language", "word"), [("zh-hans", "套餐"), ("en", "Package")])
def test_my_numbers_and_detail_render_in_both_languages(
    client, active, owner, language, word
):
    client.force_login(owner)
    client.cookies["hotline400_language"] = language

    listing = client.get(reverse("plans:my_numbers"))
    detail = client.get(reverse("plans:subscription", args=[active.pk]))

    assert listing.status_code == detail.status_code == 200
    assert active.number.display in listing.content.decode()
    assert word in detail.content.decode()


def test_another_companys_subscription_is_a_404_everywhere(client, active):
    stranger = UserFactory(company=CompanyFactory(), role="owner")
    client.force_login(stranger)

    for name in (
        "plans:subscription",
        "plans:change_plan",
        "plans:change_services",
        "plans:change_answer_numbers",
        "plans:end",
    ):
        assert client.get(reverse(name, args=[active.pk])).status_code == 404
    assert (
        client.post(
            reverse("plans:end", args=[active.pk]), {"confirm": "on"}
        ).status_code
        == 404
    )
    active.refresh_from_db()
    assert active.status == Subscription.Status.ACTIVE
    assert (
        active.number.display
        not in client.get(reverse("plans:my_numbers")).content.decode()
    )


def test_finance_and_members_read_but_do_not_change(client, active, company):
    for role in ("finance", "member"):
        client.force_login(UserFactory(company=company, role=role))

        assert (
            client.get(reverse("plans:subscription", args=[active.pk])).status_code
            == 200
        )
        assert (
            client.get(reverse("plans:change_plan", args=[active.pk])).status_code
            == 404
        )
        assert (
            client.post(
                reverse("plans:end", args=[active.pk]), {"confirm": "on"}
            ).status_code
            == 404
        )


def test_agent_staff_see_the_subscription_with_its_periods(
    client, pending, agent_staff
):
    services.subscription_activate(
        subscription=pending, on=D(2026, 3, 11), by=agent_staff
    )
    client.force_login(agent_staff)

    response = client.get(reverse("admin:plans_subscription_change", args=[pending.pk]))

    body = response.content.decode()
    assert response.status_code == 200
    assert "2026-03-11" in body
    assert "+8613800138000" in body


def test_a_monthly_pool_is_prorated_in_the_month_of_activation(company, standard):
    # Activated on 2026-03-11: 21 of 31 days, floor(1000 × 21 / 31) = 677.
    sub = SubscriptionFactory(
        company=company, plan=standard, activated_on=D(2026, 3, 11)
    )
    _call(sub, shanghai(2026, 3, 12, 9, 0), 30)
    _call(sub, shanghai(2026, 4, 1, 9, 0), 99)  # next month's pool

    march = selectors.subscription_pool(
        company=company, subscription=sub, on=D(2026, 3, 20)
    )
    april = selectors.subscription_pool(
        company=company, subscription=sub, on=D(2026, 4, 2)
    )

    assert (march.start, march.end, march.included, march.used) == (
        D(2026, 3, 11),
        D(2026, 3, 31),
        677,
        30,
    )
    assert (april.included, april.used, april.remaining) == (1000, 99, 901)


def test_another_company_gets_no_pool_figures(active):
    assert (
        selectors.subscription_pool(
            company=CompanyFactory(), subscription=active, on=D(2026, 4, 2)
        )
        is None
    )


# --- answering numbers ----------------------------------------------------------
def answer_rows(subscription):
    return list(
        AnswerNumber.objects.filter(subscription=subscription)
        .order_by("start_date", "phone")
        .values_list("phone", "start_date", "end_date")
    )


def test_answering_numbers_change_from_today(active, owner):
    # given a number that rings one phone since activation
    AnswerNumber.objects.create(
        subscription=active, phone="+8613800138000", start_date=D(2026, 3, 1)
    )
    # when the owner keeps it, adds a landline and saves on the 14th
    services.subscription_change_answer_numbers(
        subscription=active,
        phones=["13800138000", "010-12345678"],
        by=owner,
        today=D(2026, 5, 14),
    )
    # then the kept phone keeps its period and the new one rings from today
    assert answer_rows(active) == [
        ("+8613800138000", D(2026, 3, 1), None),
        ("+861012345678", D(2026, 5, 14), None),
    ]
    # when, on the 20th, only the landline is kept
    services.subscription_change_answer_numbers(
        subscription=active, phones=["010 1234 5678"], by=owner, today=D(2026, 5, 20)
    )
    # then the mobile stopped ringing after the 19th
    assert answer_rows(active) == [
        ("+8613800138000", D(2026, 3, 1), D(2026, 5, 19)),
        ("+861012345678", D(2026, 5, 14), None),
    ]
    assert (
        AuditEvent.objects.filter(
            action="subscription.change_answer_numbers", target_id=str(active.pk)
        ).count()
        == 2
    )


def test_a_number_added_and_dropped_the_same_day_never_rang(active, owner):
    AnswerNumber.objects.create(
        subscription=active, phone="+8613800138000", start_date=D(2026, 3, 1)
    )
    day = D(2026, 5, 14)
    services.subscription_change_answer_numbers(
        subscription=active, phones=["13800138000", "13900139000"], by=owner, today=day
    )
    services.subscription_change_answer_numbers(
        subscription=active, phones=["13800138000"], by=owner, today=day
    )
    assert answer_rows(active) == [("+8613800138000", D(2026, 3, 1), None)]


def test_before_activation_the_answering_numbers_are_replaced(pending, owner):
    services.subscription_change_answer_numbers(
        subscription=pending, phones=["13900139000"], by=owner
    )
    assert answer_rows(pending) == [("+8613900139000", None, None)]


@pytest.mark.parametrize(
    ("phones", "fragment"),
    [([], "at least one"), (["12345"], "12345"), (["13800138000"] * 2, "twice")],
)
def test_bad_answering_numbers_change_nothing(active, owner, phones, fragment):
    AnswerNumber.objects.create(
        subscription=active, phone="+8613800138000", start_date=D(2026, 3, 1)
    )
    with (
        translation.override("en"),
        pytest.raises(services.InvalidAnswerNumbers, match=fragment),
    ):
        services.subscription_change_answer_numbers(
            subscription=active, phones=phones, by=owner
        )
    assert answer_rows(active) == [("+8613800138000", D(2026, 3, 1), None)]


def test_an_extra_answering_number_is_billed_from_the_day_it_is_added(
    active, owner, standard
):
    # given a package with one answering number included and ¥10 a month for
    # each further one, and a second phone added on 16 April (30-day month)
    from billing.services.invoices import invoice_compute

    CatalogSettings.objects.update_or_create(
        pk=1, defaults={"extra_answer_number_fee": Decimal("10.00")}
    )
    standard.included_answer_numbers = 1
    standard.save()
    AnswerNumber.objects.create(
        subscription=active, phone="+8613800138000", start_date=D(2026, 3, 1)
    )
    services.subscription_change_answer_numbers(
        subscription=active,
        phones=["13800138000", "13900139000"],
        by=owner,
        today=D(2026, 4, 16),
    )
    # when April is billed
    month = invoice_compute(company=active.company, period=D(2026, 4, 1))
    # then 15 of 30 days of one extra number are charged: ¥5.00
    (extra,) = [line for line in month.lines if line.kind == "extra_answer"]
    assert extra.amount == Decimal("5.00")
    assert (extra.period_start, extra.period_end) == (D(2026, 4, 16), D(2026, 4, 30))


def test_the_owner_changes_answering_numbers_in_the_portal(client, active, owner):
    AnswerNumber.objects.create(
        subscription=active, phone="+8613800138000", start_date=D(2026, 3, 1)
    )
    client.force_login(owner)
    url = reverse("plans:change_answer_numbers", args=[active.pk])

    page = client.get(url)
    bad = client.post(url, {"answer_phones": "not a phone"})
    good = client.post(url, {"answer_phones": "13800138000\n13900139000"})

    assert "+8613800138000" in page.content.decode()
    assert bad.status_code == 200
    assert "not a phone" in bad.content.decode()
    assert good.status_code == 302
    assert {p for p, _s, e in answer_rows(active) if e is None} == {
        "+8613800138000",
        "+8613900139000",
    }


def test_finance_and_members_cannot_change_answering_numbers(client, active, company):
    for role in ("finance", "member"):
        client.force_login(UserFactory(company=company, role=role))
        url = reverse("plans:change_answer_numbers", args=[active.pk])
        assert client.post(url, {"answer_phones": "13900139000"}).status_code == 404
    assert not AnswerNumber.objects.filter(subscription=active).exists()
