"""Set-up shared by the invoice tests: a realistic company-month, raw calls."""

import datetime as dt
import itertools
from decimal import Decimal

from billing.models import CallRecord
from plans.models import Holiday
from tests.factories import (
    CompanyFactory,
    HolidayFactory,
    PhoneNumberFactory,
    PlanFactory,
    SubscriptionFactory,
    TermPlanFactory,
    ValueAddedServiceFactory,
    shanghai,
)

_ids = itertools.count(1)


def call(sub, start: dt.datetime, seconds: int, *, direction="inbound", answered=True):
    """An unrated call as the carrier reports it (the rating engine rates it)."""
    local = start.astimezone(shanghai(2026, 1, 1).tzinfo)
    return CallRecord.objects.create(
        call_id=f"t-{sub.pk}-{next(_ids):08d}",
        company=sub.company,
        subscription=sub,
        number=sub.number,
        caller_number="13800138000",
        caller_area="广东深圳",
        start_time=start,
        period=local.date().replace(day=1),
        duration_seconds=seconds,
        direction=direction,
        status="answered" if answered else "missed",
    )


def march_company(*, agent=None, name="深圳市华南贸易有限公司"):
    """The month every invoice test checks by hand (see test_invoices.py).

    Number A (400-810-0001): monthly plan ¥199 / 1,000 min, 0.15 / 0.10 /
    0.20, one answering number included, IVR included; activated 2026-03-10
    (22 of 31 days); call recording ¥20 not included; three answering numbers
    (two extra at ¥10); vanity selection fee ¥2,000.
    Number B (400-810-0002): 「3000元/3年」 term plan from 2026-03-01.
    Holidays: 2026-03-18 (Wednesday) statutory, 2026-03-22 (Sunday) make-up
    working day.
    """
    kwargs = {"name": name}
    if agent is not None:
        kwargs["agent"] = agent
    company = CompanyFactory(**kwargs)
    ivr = ValueAddedServiceFactory(
        code="ivr", name_zh="语音导航", name_en="IVR", monthly_fee=Decimal("30.00")
    )
    recording = ValueAddedServiceFactory(
        code="recording",
        name_zh="通话录音",
        name_en="Call recording",
        monthly_fee=Decimal("20.00"),
    )
    monthly = PlanFactory(
        code="biz-199",
        name_zh="商务199套餐",
        name_en="Business 199",
        included_services=[ivr],
    )
    term = TermPlanFactory(code="term-3000", name_zh="3000元/3年", name_en="3000/3y")
    a = SubscriptionFactory(
        company=company,
        number=PhoneNumberFactory(number="4008100001", status="subscribed"),
        activated_on=dt.date(2026, 3, 10),
        plan=monthly,
        services=[ivr, recording],
        answer_phones=["+8613800000001", "+8613800000002", "+8613800000003"],
        selection_fee=Decimal("2000.00"),
    )
    b = SubscriptionFactory(
        company=company,
        number=PhoneNumberFactory(number="4008100002", status="subscribed"),
        activated_on=dt.date(2026, 3, 1),
        plan=term,
    )
    HolidayFactory(
        date=dt.date(2026, 3, 18), kind=Holiday.Kind.HOLIDAY, name="测试假日"
    )
    HolidayFactory(date=dt.date(2026, 3, 22), kind=Holiday.Kind.WORKDAY, name="调休")
    # A's calls: 400 + 301 + 20 fill the 709-minute pool and split the third.
    call(a, shanghai(2026, 3, 16, 10, 0), 400 * 60)  # Mon peak, 400 min
    call(a, shanghai(2026, 3, 21, 10, 0), 300 * 60 + 1)  # Sat off-peak, 301 min
    call(a, shanghai(2026, 3, 18, 10, 0), 20 * 60)  # holiday: off-peak, 20 min
    call(a, shanghai(2026, 3, 19, 9, 0), 61)  # Thu peak, 2 min
    call(a, shanghai(2026, 3, 19, 9, 30), 45, answered=False)  # missed: 0 min
    call(a, shanghai(2026, 3, 20, 14, 0), 125, direction="outbound")  # 3 min
    call(a, shanghai(2026, 3, 22, 15, 0), 300)  # make-up workday: peak, 5 min
    call(b, shanghai(2026, 3, 3, 11, 0), 10 * 60)  # term pool, 10 min
    return company, a, b
