"""factory-boy factories shared by the whole suite."""

import factory
from stdnum.cn import uscc

from accounts.models import Agent, Company, User

PASSWORD = "correct horse battery 400"


def make_uscc(n: int) -> str:
    """A valid 统一社会信用代码 derived from a sequence number."""
    body = f"91440300MA{n:07d}"
    return body + uscc.calc_check_digit(body)


class AgentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Agent

    name = factory.Sequence(lambda n: f"代理商{n}")
    legal_name = factory.LazyAttribute(lambda o: f"{o.name}通信服务有限公司")
    uscc = factory.Sequence(lambda n: make_uscc(5_000_000 + n))
    address = "广东省深圳市南山区科技园"


class CompanyFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Company

    agent = factory.SubFactory(AgentFactory)
    name = factory.Sequence(lambda n: f"测试企业{n}有限公司")
    uscc = factory.Sequence(make_uscc)
    address = "广东省深圳市福田区深南大道1号"
    billing_email = factory.Sequence(lambda n: f"billing{n}@company.example.cn")
    contact_phone = "+8613800138000"
    verification_status = Company.Verification.APPROVED


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@company.example.cn")
    full_name = factory.Sequence(lambda n: f"用户{n}")
    company = factory.SubFactory(CompanyFactory)
    role = User.Role.OWNER
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def _save(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class AgentStaffFactory(UserFactory):
    company = None
    role = ""
    agent = factory.SubFactory(AgentFactory)
    is_staff = True


# --- plans and subscriptions (shared by every billing test) -----------------

import datetime as dt  # noqa: E402
from decimal import Decimal  # noqa: E402

from plans.models import (  # noqa: E402
    AnswerNumber,
    CatalogSettings,
    Holiday,
    PhoneNumber,
    Plan,
    Subscription,
    SubscriptionPlanPeriod,
    SubscriptionServicePeriod,
    TaxRate,
    ValueAddedService,
    VanityGrade,
)


def ensure_catalog_basics() -> CatalogSettings:
    """Tax rates (9% basic, 6% value-added) and the default peak hours."""
    TaxRate.objects.get_or_create(category="basic", defaults={"rate": Decimal("0.09")})
    TaxRate.objects.get_or_create(
        category="value_added", defaults={"rate": Decimal("0.06")}
    )
    settings_row = CatalogSettings.load()
    if settings_row.extra_answer_number_fee == 0:
        settings_row.extra_answer_number_fee = Decimal("10.00")
        settings_row.save(update_fields=["extra_answer_number_fee"])
    return settings_row


class ValueAddedServiceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ValueAddedService
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"svc-{n}")
    name_zh = factory.Sequence(lambda n: f"增值业务{n}")
    name_en = factory.Sequence(lambda n: f"Service {n}")
    monthly_fee = Decimal("20.00")


class PlanFactory(factory.django.DjangoModelFactory):
    """A monthly plan: ¥199/month, 1,000 minutes, 0.15/0.10/0.20."""

    class Meta:
        model = Plan
        django_get_or_create = ("code",)
        skip_postgeneration_save = True

    code = factory.Sequence(lambda n: f"plan-{n}")
    name_zh = factory.Sequence(lambda n: f"套餐{n}")
    name_en = factory.Sequence(lambda n: f"Plan {n}")
    term_months = 1
    price = Decimal("199.00")
    included_minutes = 1000
    rate_inbound_peak = Decimal("0.1500")
    rate_inbound_offpeak = Decimal("0.1000")
    rate_outbound = Decimal("0.2000")
    included_answer_numbers = 1

    @factory.post_generation
    def included_services(obj, create, extracted, **kwargs):
        if create and extracted:
            obj.included_services.set(extracted)


class TermPlanFactory(PlanFactory):
    """「3000元/3年」: ¥3,000 for 36 months, 25,000 minutes at ¥0.12."""

    term_months = 36
    price = Decimal("3000.00")
    included_minutes = 25000
    rate_inbound_peak = Decimal("0.1200")
    rate_inbound_offpeak = Decimal("0.1200")
    rate_outbound = Decimal("0.2000")


class VanityGradeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = VanityGrade
        django_get_or_create = ("code",)

    code = factory.Sequence(lambda n: f"grade-{n}")
    name_zh = factory.Sequence(lambda n: f"靓号{n}")
    name_en = factory.Sequence(lambda n: f"Grade {n}")
    selection_fee = Decimal("2000.00")
    min_monthly = Decimal("0")
    priority = factory.Sequence(lambda n: 100 + n)
    rules = factory.LazyFunction(list)


class PhoneNumberFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PhoneNumber
        django_get_or_create = ("number",)

    number = factory.Sequence(lambda n: f"4008{n % 1_000_000:06d}")
    carrier = "telecom"


class SubscriptionFactory(factory.django.DjangoModelFactory):
    """An active subscription with one plan period from ``activated_on``.

    Pass ``plan=`` for the plan, ``services=[...]`` for value-added services and
    ``answer_phones=[...]`` for bound numbers (all from the activation date).
    """

    class Meta:
        model = Subscription
        skip_postgeneration_save = True

    company = factory.SubFactory(CompanyFactory)
    number = factory.SubFactory(PhoneNumberFactory, status="subscribed")
    status = Subscription.Status.ACTIVE
    activated_on = dt.date(2026, 3, 1)

    @factory.post_generation
    def plan(obj, create, extracted, **kwargs):
        if not create:
            return
        ensure_catalog_basics()
        SubscriptionPlanPeriod.objects.create(
            subscription=obj,
            plan=extracted or PlanFactory(),
            start_date=obj.activated_on,
        )

    @factory.post_generation
    def services(obj, create, extracted, **kwargs):
        for service in extracted or []:
            SubscriptionServicePeriod.objects.create(
                subscription=obj, service=service, start_date=obj.activated_on
            )

    @factory.post_generation
    def answer_phones(obj, create, extracted, **kwargs):
        for phone in extracted or []:
            AnswerNumber.objects.create(
                subscription=obj, phone=phone, start_date=obj.activated_on
            )


class HolidayFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Holiday
        django_get_or_create = ("date",)

    date = dt.date(2026, 10, 1)
    kind = Holiday.Kind.HOLIDAY
    name = "国庆节"


# --- billing: invoices and calls (slot 7) ------------------------------------

from zoneinfo import ZoneInfo  # noqa: E402

from billing.models import CallRecord, Invoice, InvoiceLine  # noqa: E402

SHANGHAI = ZoneInfo("Asia/Shanghai")


def shanghai(*args) -> dt.datetime:
    """An aware Asia/Shanghai datetime: ``shanghai(2026, 3, 2, 10, 0)``."""
    return dt.datetime(*args, tzinfo=SHANGHAI)


class InvoiceFactory(factory.django.DjangoModelFactory):
    """A draft invoice; build its lines, then ``issue_for_tests(invoice)``."""

    class Meta:
        model = Invoice

    company = factory.SubFactory(CompanyFactory)
    period = dt.date(2026, 3, 1)
    status = Invoice.Status.DRAFT


def issue_for_tests(invoice: Invoice, *, number: str | None = None) -> Invoice:
    """Mark a draft issued the way issuing does (number, copies, total, due).

    Test set-up only: the real path is slot 6's issuing service.
    """
    from billing.money import money_sum

    company = invoice.company
    agent = company.agent
    total = money_sum(invoice.lines.values_list("amount", flat=True))
    Invoice.objects.filter(pk=invoice.pk).update(
        status=Invoice.Status.ISSUED,
        number=number or f"HL-{invoice.period.year}-{invoice.pk:06d}",
        total=total,
        issued_at=dt.datetime(
            invoice.period.year, invoice.period.month, 1, tzinfo=SHANGHAI
        )
        + dt.timedelta(days=32),
        due_date=(invoice.period + dt.timedelta(days=47)),
        seller_name=agent.legal_name or agent.name,
        seller_uscc=agent.uscc,
        seller_address=agent.address,
        seller_bank=f"{agent.bank_name} {agent.bank_account}".strip(),
        buyer_name=company.name,
        buyer_uscc=company.uscc,
        buyer_address=company.address,
        buyer_email=company.billing_email,
        language=company.language,
    )
    CallRecord.objects.filter(
        company=company, period=invoice.period, invoice__isnull=True
    ).update(invoice=invoice)
    invoice.refresh_from_db()
    return invoice


class InvoiceLineFactory(factory.django.DjangoModelFactory):
    """A line of a draft invoice (a monthly package fee unless told otherwise)."""

    class Meta:
        model = InvoiceLine

    invoice = factory.SubFactory(InvoiceFactory)
    subscription = factory.SubFactory(
        SubscriptionFactory, company=factory.SelfAttribute("..invoice.company")
    )
    number_display = factory.LazyAttribute(lambda o: o.subscription.number.number)
    position = factory.Sequence(lambda n: n + 1)
    kind = InvoiceLine.Kind.PLAN_FEE
    usage_period = factory.LazyAttribute(lambda o: o.invoice.period)
    description = "套餐月费"
    tax_category = "basic"
    tax_rate = Decimal("0.0900")
    quantity = Decimal("1")
    unit = "月"
    unit_price = Decimal("199.00")
    amount = factory.LazyAttribute(
        lambda o: (o.quantity * o.unit_price).quantize(Decimal("0.01"))
    )


class CallRecordFactory(factory.django.DjangoModelFactory):
    """An answered inbound peak call of 90 s (2 minutes), charged at ¥0.15."""

    class Meta:
        model = CallRecord

    call_id = factory.Sequence(lambda n: f"call-{n:08d}")
    subscription = factory.SubFactory(SubscriptionFactory)
    company = factory.LazyAttribute(lambda o: o.subscription.company)
    number = factory.LazyAttribute(lambda o: o.subscription.number)
    caller_number = "13800138000"
    caller_area = "广东深圳"
    start_time = factory.LazyFunction(lambda: shanghai(2026, 3, 2, 10, 0))
    period = factory.LazyAttribute(
        lambda o: o.start_time.astimezone(SHANGHAI).date().replace(day=1)
    )
    duration_seconds = 90
    direction = "inbound"
    status = "answered"
    band = "peak"
    billable_minutes = 2
    pool_minutes = 0
    charged_minutes = 2
    rate = Decimal("0.1500")
    amount = factory.LazyAttribute(lambda o: o.rate * o.charged_minutes)


# --- plans: search, holds, checkout (slot 3) ---------------------------------


def stock_number(number: str, *, grade=None, **fields) -> PhoneNumber:
    """A number in stock as the importer leaves it: carrier, has_four and the
    grade's selection fee filled in."""
    fields.setdefault("carrier", "telecom")
    return PhoneNumber.objects.create(
        number=number,
        grade=grade,
        selection_fee=grade.selection_fee if grade else Decimal("0"),
        has_four="4" in number[3:],
        **fields,
    )
