"""Demo subscriptions for the demo companies (seed_demo, after plans.demo).

Goes through the same services as the portal and the back office — hold,
confirm, activate — so the demo data obeys every rule (minimum plans, row
locks, dated periods). Idempotent: a company that already has the planned
number, or a subscription under the same plan, is left alone.
"""

import datetime as dt
from dataclasses import dataclass

from django.utils import timezone

from accounts.models import Company, User

from . import services
from .models import PhoneNumber, Plan, Subscription, ValueAddedService
from .pricing import add_months


@dataclass(frozen=True)
class DemoSubscription:
    company_uscc_prefix: str  # the demo USCC without its check digit
    plan: str
    services: tuple[str, ...]
    phones: tuple[str, ...]
    months_ago: int  # activated this many months ago…
    day: int  # …on this day of that month
    numbers: tuple[str, ...]  # preferred numbers, first available wins
    grades: tuple[str, ...] = ()  # else any number of these grades


DEMO = [
    # 深圳鹏程家电维修: a monthly number in service for months, and the
    # supreme vanity number 400-810-7777 on the call-centre yearly package.
    DemoSubscription(
        company_uscc_prefix="91440300MA5F8QWX2",
        plan="monthly-199",
        services=("ivr", "recording"),
        phones=("+8613800138000", "+8675586001234", "+8613912345678"),
        months_ago=4,
        day=10,
        numbers=("4008102357", "4008102367", "4008103579"),
    ),
    DemoSubscription(
        company_uscc_prefix="91440300MA5F8QWX2",
        plan="term-1y-12000",
        services=("recording", "voicemail"),
        phones=("+8613800138000", "+8675586001235"),
        months_ago=2,
        day=1,
        numbers=("4008107777", "4008106666"),
        grades=("supreme", "deluxe"),
    ),
    # 北京京东方物流: a lucky-ending number on the 3-year prepaid package.
    DemoSubscription(
        company_uscc_prefix="91110105MA00L0G13",
        plan="term-3y-3000",
        services=("ivr",),
        phones=("+861085001234",),
        months_ago=6,
        day=18,
        numbers=("4008105188", "4008105168"),
        grades=("lucky",),
    ),
]


def _company(prefix: str) -> Company | None:
    return Company.objects.filter(uscc__startswith=prefix).first()


def _number(spec: DemoSubscription, plan: Plan) -> PhoneNumber | None:
    allowed = [
        n
        for n in PhoneNumber.objects.filter(
            number__in=spec.numbers, status=PhoneNumber.Status.AVAILABLE
        ).select_related("grade")
        if services.plan_refusal(plan=plan, grade=n.grade) is None
    ]
    if allowed:
        return sorted(allowed, key=lambda n: spec.numbers.index(n.number))[0]
    for code in spec.grades:
        number = (
            PhoneNumber.objects.filter(
                grade__code=code, status=PhoneNumber.Status.AVAILABLE
            )
            .select_related("grade")
            .order_by("number")
            .first()
        )
        if number and services.plan_refusal(plan=plan, grade=number.grade) is None:
            return number
    return None


def seed(*, stdout) -> None:
    today = timezone.localdate()
    for spec in DEMO:
        company = _company(spec.company_uscc_prefix)
        plan = Plan.objects.filter(code=spec.plan).first()
        if company is None or plan is None:
            stdout.write(f"  subscriptions: skipped {spec.plan} (no company or plan)")
            continue
        mine = Subscription.objects.filter(company=company)
        if (
            mine.filter(number__number__in=spec.numbers).exists()
            or mine.filter(plan_periods__plan=plan).exists()
        ):
            continue
        owner = company.users.filter(role=User.Role.OWNER).first()
        number = _number(spec, plan)
        if number is None:
            stdout.write(f"  subscriptions: no number in stock for {spec.plan}")
            continue
        hold = services.number_hold(company=company, number=number, by=owner)
        subscription = services.subscription_confirm(
            hold=hold,
            plan=plan,
            services=ValueAddedService.objects.filter(code__in=spec.services),
            answer_phones=spec.phones,
            by=owner,
        )
        month = add_months(today.replace(day=1), -spec.months_ago)
        activated_on = month + dt.timedelta(days=spec.day - 1)
        services.subscription_activate(
            subscription=subscription, on=activated_on, by=None
        )
        stdout.write(
            f"  subscriptions: {company.name} {number.display} on {plan.code} "
            f"from {activated_on.isoformat()}"
        )
