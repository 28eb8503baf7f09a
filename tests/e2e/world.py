"""A company with something on every portal page, for the page-by-page checks
(labels, headings, contrast, phone layout)."""

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

from django.utils import timezone

from billing.models import InvoiceLine
from billing.services.invoices import close_company
from plans.models import Hold
from plans.services import number_hold
from tests.billing.invoice_helpers import call
from tests.e2e.helpers import customer
from tests.factories import (
    PhoneNumberFactory,
    PlanFactory,
    SubscriptionFactory,
    UserFactory,
    ValueAddedServiceFactory,
    VanityGradeFactory,
    issue_for_tests,
    shanghai,
    stock_number,
)


@dataclass
class World:
    owner: object
    finance: object
    member: object
    subscription: object
    invoice: object
    usage_line: object
    hold: Hold


def build_world() -> World:
    company = customer()
    owner = UserFactory(company=company, role="owner", full_name="李娜")
    recording = ValueAddedServiceFactory(
        code="recording", name_zh="通话录音", name_en="Call recording"
    )
    plan = PlanFactory(code="std", name_zh="标准套餐", name_en="Standard")
    PlanFactory(
        code="biz",
        name_zh="商务套餐",
        name_en="Business",
        price=Decimal("399.00"),
        included_minutes=3000,
        included_services=[recording],
    )
    this_month = timezone.localdate().replace(day=1)
    last_month = (this_month - dt.timedelta(days=1)).replace(day=1)
    sub = SubscriptionFactory(
        company=company,
        number=PhoneNumberFactory(number="4008100001", status="subscribed"),
        activated_on=last_month,
        plan=plan,
        services=[recording],
        answer_phones=["+8613800138000"],
    )
    for month in (last_month, this_month):
        call(sub, shanghai(month.year, month.month, 1, 10, 0), 125)
        call(sub, shanghai(month.year, month.month, 1, 21, 0), 0, answered=False)
        call(sub, shanghai(month.year, month.month, 2, 15, 0), 61, direction="outbound")
    close_company(company=company, period=last_month, issue=False)
    invoice = issue_for_tests(company.invoices.get(period=last_month))
    close_company(company=company, period=this_month, issue=False)  # rates calls
    company.invoices.filter(period=this_month).delete()
    grade = VanityGradeFactory(
        code="aaaa", name_zh="四连号", name_en="Four of a kind", min_monthly=300
    )
    stock_number("4006868888", grade=grade)
    stock_number("4005551234")
    hold = number_hold(
        company=company,
        number=stock_number("4001118888", grade=grade),
        by=owner,
    )
    return World(
        owner=owner,
        finance=UserFactory(company=company, role="finance", full_name="王芳"),
        member=UserFactory(company=company, role="member"),
        subscription=sub,
        invoice=invoice,
        usage_line=invoice.lines.filter(kind=InvoiceLine.Kind.INBOUND_PEAK).first()
        or invoice.lines.exclude(billable_minutes=None).first(),
        hold=hold,
    )


def portal_pages(world: World) -> dict[str, str]:
    """The main pages of the portal as the owner sees them, by a short name."""
    sub = world.subscription.pk
    return {
        "overview": "/",
        "search": "/numbers/",
        "search-results": "/numbers/?pattern=400*8*8888",
        "packages": "/numbers/packages/",
        "checkout": f"/numbers/holds/{world.hold.pk}/checkout/",
        "my-numbers": "/numbers/mine/",
        "number": f"/numbers/mine/{sub}/",
        "change-package": f"/numbers/mine/{sub}/package/",
        "change-services": f"/numbers/mine/{sub}/services/",
        "change-answering": f"/numbers/mine/{sub}/answering/",
        "month-to-date": "/billing/this-month/",
        "bills": "/billing/invoices/",
        "bill": f"/billing/invoices/{world.invoice.pk}/",
        "line-calls": f"/billing/lines/{world.usage_line.pk}/calls/",
        "analytics": "/billing/analytics/",
        "advisor": "/billing/advisor/",
        "api-keys": "/billing/api-keys/",
        "settings": "/accounts/settings/",
        "company": "/accounts/settings/company/",
        "password": "/accounts/password/change/",
    }


PUBLIC_PAGES = [
    "/accounts/login/",
    "/accounts/signup/",
    "/accounts/password/reset/",
]
