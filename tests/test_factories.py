import datetime as dt
from decimal import Decimal

from tests.factories import (
    SubscriptionFactory,
    TermPlanFactory,
    ValueAddedServiceFactory,
)


def test_subscription_factory_builds_dated_plan_services_and_answer_numbers(db):
    plan = TermPlanFactory()
    service = ValueAddedServiceFactory(monthly_fee=Decimal("30.00"))

    sub = SubscriptionFactory(
        plan=plan,
        services=[service],
        answer_phones=["+8613800138000"],
        activated_on=dt.date(2026, 4, 15),
    )

    period = sub.plan_periods.get()
    assert (period.plan, period.start_date) == (plan, dt.date(2026, 4, 15))
    assert sub.service_periods.get().service == service
    assert sub.answer_numbers.get().phone == "+8613800138000"
    assert sub.number.status == "subscribed"
