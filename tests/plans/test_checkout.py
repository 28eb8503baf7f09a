"""Checkout: the pure pricing, the minimum-plan rule, confirming a hold into a
subscription, and who may do it."""

import datetime as dt
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone
from hypothesis import given
from hypothesis import strategies as st

from plans import pricing, services
from plans.models import AnswerNumber, Hold, PhoneNumber, Subscription
from tests.factories import (
    CompanyFactory,
    PlanFactory,
    TermPlanFactory,
    UserFactory,
    ValueAddedServiceFactory,
    VanityGradeFactory,
    ensure_catalog_basics,
    stock_number,
)

MONTHLY = pricing.PlanTerms(
    name="标准版",
    term_months=1,
    price=Decimal("199.00"),
    included_minutes=1000,
    rate_inbound_peak=Decimal("0.1500"),
    rate_inbound_offpeak=Decimal("0.1000"),
    rate_outbound=Decimal("0.2000"),
    included_answer_numbers=1,
    included_service_codes=frozenset({"ivr"}),
)
TERM = pricing.PlanTerms(
    name="3000元/3年",
    term_months=36,
    price=Decimal("3000.00"),
    included_minutes=25000,
    rate_inbound_peak=Decimal("0.1200"),
    rate_inbound_offpeak=Decimal("0.1200"),
    rate_outbound=Decimal("0.2000"),
    included_answer_numbers=2,
)
IVR = pricing.ServiceTerms(code="ivr", name="语音导航", monthly_fee=Decimal("30.00"))
RECORDING = pricing.ServiceTerms(
    code="recording", name="通话录音", monthly_fee=Decimal("20.00")
)


# --- pure arithmetic (worked by hand) ---------------------------------------
def test_monthly_plan_activated_mid_month_is_prorated():
    # 2026-03-11: 21 of 31 days. 199 × 21 / 31 = 134.806… → 134.81;
    # recording 20 × 21 / 31 = 13.548… → 13.55; 2 extra answering numbers
    # 2 × 10 × 21 / 31 = 13.548… → 13.55; pool floor(1000 × 21 / 31) = 677.
    quote = pricing.quote(
        plan=MONTHLY,
        services=[IVR, RECORDING],
        answer_numbers=3,
        extra_answer_fee=Decimal("10.00"),
        selection_fee=Decimal("2000.00"),
        activation=dt.date(2026, 3, 11),
    )

    amounts = {(line.kind, line.label): line.amount for line in quote.first_invoice}
    assert amounts == {
        ("plan", "标准版"): Decimal("134.81"),
        ("service", "语音导航"): Decimal("0.00"),
        ("service", "通话录音"): Decimal("13.55"),
        ("answer_numbers", ""): Decimal("13.55"),
        ("selection_fee", ""): Decimal("2000.00"),
    }
    assert quote.first_total == Decimal("2161.91")
    assert quote.monthly_total == Decimal("239.00")  # 199 + 0 + 20 + 20
    assert (quote.first_pool, quote.pool) == (677, 1000)
    assert [line.included for line in quote.monthly if line.kind == "service"] == [
        True,
        False,
    ]


def test_term_plan_bills_the_whole_price_first_and_nothing_monthly():
    quote = pricing.quote(
        plan=TERM,
        services=[],
        answer_numbers=2,
        extra_answer_fee=Decimal("10.00"),
        selection_fee=Decimal("0"),
        activation=dt.date(2026, 3, 11),
    )

    assert quote.first_total == Decimal("3000.00")
    assert quote.monthly == []
    assert quote.term_end == dt.date(2029, 3, 10)
    assert quote.first_pool == quote.pool == 25000


def test_activation_on_the_first_bills_the_full_month():
    quote = pricing.quote(
        plan=MONTHLY,
        services=[],
        answer_numbers=1,
        extra_answer_fee=Decimal("10.00"),
        selection_fee=Decimal("0"),
        activation=dt.date(2026, 2, 1),
    )

    assert quote.first_total == Decimal("199.00")
    assert quote.first_pool == 1000


@pytest.mark.parametrize(
    ("start", "on", "bounds"),
    [
        (dt.date(2026, 3, 11), dt.date(2026, 3, 11), ("2026-03-11", "2029-03-10")),
        (dt.date(2026, 3, 11), dt.date(2029, 3, 10), ("2026-03-11", "2029-03-10")),
        (dt.date(2026, 3, 11), dt.date(2029, 3, 11), ("2029-03-11", "2032-03-10")),
        (dt.date(2024, 2, 29), dt.date(2027, 3, 1), ("2027-02-28", "2030-02-27")),
    ],
)
def test_term_bounds(start, on, bounds):
    first, last = pricing.term_bounds(start, 36, on)

    assert (first.isoformat(), last.isoformat()) == bounds


def test_minimum_monthly_is_compared_exactly():
    assert pricing.meets_min_monthly(Decimal("3600.00"), 36, Decimal("100.00"))
    assert not pricing.meets_min_monthly(Decimal("3599.99"), 36, Decimal("100.00"))
    assert not pricing.meets_min_monthly(Decimal("199.00"), 1, Decimal("299.00"))


@given(
    price=st.decimals(min_value=0, max_value=100000, places=2),
    day=st.dates(min_value=dt.date(2024, 1, 1), max_value=dt.date(2030, 12, 31)),
)
def test_prorated_fee_never_exceeds_the_month(price, day):
    active = pricing.active_days_from(day)

    fee = pricing.prorate(price, active, pricing.days_in_month(day))

    assert Decimal("0") <= fee <= price
    assert fee == fee.quantize(Decimal("0.01"))


@given(
    services=st.lists(st.sampled_from([IVR, RECORDING]), unique=True),
    phones=st.integers(min_value=1, max_value=10),
    day=st.dates(min_value=dt.date(2026, 1, 1), max_value=dt.date(2027, 12, 31)),
)
def test_quote_totals_are_the_sum_of_their_lines(services, phones, day):
    quote = pricing.quote(
        plan=MONTHLY,
        services=services,
        answer_numbers=phones,
        extra_answer_fee=Decimal("10.00"),
        selection_fee=Decimal("500.00"),
        activation=day,
    )

    assert quote.first_total == sum(line.amount for line in quote.first_invoice)
    assert quote.first_pool <= quote.pool
    assert quote.extra_answer_numbers == max(0, phones - 1)


# --- the service --------------------------------------------------------------
@pytest.fixture
def catalog(db):
    ensure_catalog_basics()
    ivr = ValueAddedServiceFactory(code="ivr", monthly_fee=Decimal("30.00"))
    recording = ValueAddedServiceFactory(code="recording")
    cheap = PlanFactory(code="basic", price=Decimal("99.00"))
    standard = PlanFactory(code="standard", price=Decimal("299.00"))
    standard.included_services.set([ivr])
    term = TermPlanFactory(code="term-3y")
    return {
        "ivr": ivr,
        "recording": recording,
        "basic": cheap,
        "standard": standard,
        "term": term,
    }


@pytest.fixture
def gold(db):
    return VanityGradeFactory(
        code="gold", selection_fee=Decimal("2000.00"), min_monthly=Decimal("199.00")
    )


@pytest.fixture
def held(company, owner, gold):
    number = stock_number("4008108888", grade=gold)
    return services.number_hold(company=company, number=number, by=owner)


def test_confirming_creates_a_pending_subscription_with_undated_periods(
    catalog, held, owner, gold
):
    subscription = services.subscription_confirm(
        hold=held,
        plan=catalog["standard"],
        services=[catalog["ivr"], catalog["recording"]],
        answer_phones=["138 0013 8000", "010-12345678"],
        by=owner,
    )

    held.refresh_from_db()
    number = PhoneNumber.objects.get(pk=held.number_id)
    assert subscription.status == Subscription.Status.PENDING
    assert (subscription.grade, subscription.selection_fee) == (
        gold,
        Decimal("2000.00"),
    )
    assert held.converted_at is not None
    assert number.status == PhoneNumber.Status.SUBSCRIBED
    period = subscription.plan_periods.get()
    assert (period.plan, period.start_date) == (catalog["standard"], None)
    assert subscription.service_periods.filter(start_date=None).count() == 2
    assert sorted(AnswerNumber.objects.values_list("phone", flat=True)) == [
        "+861012345678",
        "+8613800138000",
    ]


def test_a_plan_below_the_grades_minimum_is_refused(catalog, held, owner):
    with pytest.raises(services.PlanNotAllowed) as exc:
        services.subscription_confirm(
            hold=held,
            plan=catalog["basic"],  # 99/month < 199
            services=[],
            answer_phones=["13800138000"],
            by=owner,
        )

    assert exc.value.message
    assert not Subscription.objects.exists()
    assert Hold.objects.get(pk=held.pk).converted_at is None


def test_a_term_plan_is_judged_by_its_monthly_equivalent(catalog, held, owner):
    # 3000 / 36 = 83.33 per month < 199.
    assert services.plan_refusal(plan=catalog["term"], grade=held.number.grade)
    assert (
        services.plan_refusal(plan=catalog["standard"], grade=held.number.grade) is None
    )


def test_an_unverified_company_can_hold_but_not_confirm(catalog, gold):
    company = CompanyFactory(verification_status="pending")
    owner = UserFactory(company=company, role="owner")
    hold = services.number_hold(
        company=company, number=stock_number("4008100000"), by=owner
    )

    with pytest.raises(services.CompanyNotVerified):
        services.subscription_confirm(
            hold=hold,
            plan=catalog["standard"],
            services=[],
            answer_phones=["13800138000"],
            by=owner,
        )

    assert not Subscription.objects.exists()


def test_an_expired_hold_cannot_be_confirmed(catalog, company, owner):
    past = timezone.now() - dt.timedelta(hours=1)
    hold = services.number_hold(
        company=company, number=stock_number("4008100000"), by=owner, now=past
    )

    with pytest.raises(services.HoldNotOpen):
        services.subscription_confirm(
            hold=hold,
            plan=catalog["standard"],
            services=[],
            answer_phones=["13800138000"],
            by=owner,
        )


@pytest.mark.parametrize(
    "phones", [[], ["12345"], ["13800138000", "+86 138 0013 8000"], ["+14155550100"]]
)
def test_answering_numbers_must_be_chinese_valid_and_distinct(
    catalog, held, owner, phones
):
    with pytest.raises(services.InvalidAnswerNumbers):
        services.subscription_confirm(
            hold=held,
            plan=catalog["standard"],
            services=[],
            answer_phones=phones,
            by=owner,
        )

    assert not Subscription.objects.exists()


# --- the page -----------------------------------------------------------------
def _post(client, hold, **data):
    return client.post(reverse("plans:checkout", args=[hold.pk]), data)


def test_checkout_shows_the_refused_plan_disabled_with_the_reason(
    client, catalog, held, owner
):
    client.force_login(owner)
    client.cookies["hotline400_language"] = "en"

    body = client.get(reverse("plans:checkout", args=[held.pk])).content.decode()

    basic = catalog["basic"]
    assert f'value="{basic.pk}" disabled' in body
    assert "need a package of at least ¥199.00 per month" in body
    assert "1 answering number included" in body
    assert "¥10.00 per month" in body  # each extra answering number


@pytest.mark.parametrize(
    ("language", "words"),
    [
        ("en", ["Your first bill", "Every month after", "Estimated as if"]),
        ("zh-hans", ["¥2,000.00", "¥299.00"]),
    ],
)
def test_review_shows_the_first_bill_and_the_monthly_bill(
    client, catalog, held, owner, language, words
):
    client.force_login(owner)
    client.cookies["hotline400_language"] = language

    response = _post(
        client,
        held,
        action="review",
        plan=catalog["standard"].pk,
        services=[catalog["ivr"].pk],
        answer_phones="13800138000",
    )

    body = response.content.decode()
    assert response.status_code == 200
    for word in words:
        assert word in body
    assert not Subscription.objects.exists()


def test_confirm_from_the_page_creates_the_subscription(client, catalog, held, owner):
    client.force_login(owner)

    response = _post(
        client,
        held,
        action="confirm",
        plan=catalog["standard"].pk,
        answer_phones="13800138000, 0755-86001234",
    )

    subscription = Subscription.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("plans:subscription", args=[subscription.pk])
    assert subscription.answer_numbers.count() == 2


def test_posting_a_refused_plan_shows_the_reason_and_creates_nothing(
    client, catalog, held, owner
):
    client.force_login(owner)
    client.cookies["hotline400_language"] = "en"

    response = _post(
        client,
        held,
        action="confirm",
        plan=catalog["basic"].pk,
        answer_phones="13800138000",
    )

    assert response.status_code == 200
    assert "need a package of at least" in response.content.decode()
    assert not Subscription.objects.exists()


def test_bad_answering_number_is_shown_on_the_form(client, catalog, held, owner):
    client.force_login(owner)
    client.cookies["hotline400_language"] = "en"

    response = _post(
        client, held, action="review", plan=catalog["standard"].pk, answer_phones="123"
    )

    assert response.status_code == 200
    assert "is not a Chinese mobile or landline number" in response.content.decode()


def test_unverified_company_sees_why_it_cannot_confirm(client, catalog):
    company = CompanyFactory(verification_status="pending")
    owner = UserFactory(company=company, role="owner")
    hold = services.number_hold(
        company=company, number=stock_number("4008100000"), by=owner
    )
    client.force_login(owner)
    client.cookies["hotline400_language"] = "en"

    response = _post(
        client,
        hold,
        action="confirm",
        plan=catalog["standard"].pk,
        answer_phones="13800138000",
    )

    assert "verification is not complete" in response.content.decode()
    assert not Subscription.objects.exists()


def test_only_owners_reach_checkout(client, catalog, held, company):
    client.force_login(UserFactory(company=company, role="finance"))

    assert client.get(reverse("plans:checkout", args=[held.pk])).status_code == 404
