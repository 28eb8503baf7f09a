"""Enough data for a close or an import that takes a few seconds, built fast."""

import csv
import datetime as dt
import random
from pathlib import Path
from zoneinfo import ZoneInfo

from accounts.models import Company
from billing.models import CallRecord
from plans.models import PhoneNumber, Subscription, SubscriptionPlanPeriod
from tests.factories import PlanFactory, ensure_catalog_basics, make_uscc

MARCH = dt.date(2026, 3, 1)
SH = ZoneInfo("Asia/Shanghai")


def companies_with_calls(
    agent, n: int, *, first_number: int = 0, seed: int = 400, calls: bool = True
):
    """n companies, one ¥199 number each (5 minutes included) from 2026-03-01
    and 1–6 unrated March calls each (peak, off-peak, outbound, missed), in
    bulk; ``calls=False``: no calls."""
    ensure_catalog_basics()
    plan = PlanFactory(included_minutes=5)
    base = Company.objects.count()
    companies = Company.objects.bulk_create(
        [
            Company(
                agent=agent,
                name=f"故障测试企业{base + i:05d}有限公司",
                uscc=make_uscc(4_000_000 + base + i),
                address="广东省深圳市南山区科技园",
                billing_email=f"faults{base + i}@company.example.cn",
                contact_phone="+8613800138000",
                verification_status=Company.Verification.APPROVED,
            )
            for i in range(n)
        ]
    )
    numbers = PhoneNumber.objects.bulk_create(
        [
            PhoneNumber(
                number=f"4006{first_number + i:06d}",
                carrier="telecom",
                status="subscribed",
            )
            for i in range(n)
        ]
    )
    subs = Subscription.objects.bulk_create(
        [
            Subscription(
                company=c,
                number=num,
                status=Subscription.Status.ACTIVE,
                activated_on=MARCH,
            )
            for c, num in zip(companies, numbers, strict=True)
        ]
    )
    SubscriptionPlanPeriod.objects.bulk_create(
        [
            SubscriptionPlanPeriod(subscription=s, plan=plan, start_date=MARCH)
            for s in subs
        ]
    )
    rng = random.Random(seed)
    rows = []
    for sub in subs if calls else ():
        for i in range(rng.randint(1, 6)):
            outbound = rng.random() < 0.2
            answered = outbound or rng.random() < 0.85
            start = dt.datetime(
                2026, 3, rng.randint(1, 31), rng.choice([9, 11, 15, 20, 23]), i, 0
            ).replace(tzinfo=SH)
            rows.append(
                CallRecord(
                    call_id=f"F-{sub.pk}-{i}",
                    company_id=sub.company_id,
                    subscription=sub,
                    number_id=sub.number_id,
                    caller_number="13800138000",
                    start_time=start,
                    period=MARCH,
                    duration_seconds=rng.randint(20, 400) if answered else 0,
                    direction="outbound" if outbound else "inbound",
                    status="answered" if answered else "missed",
                )
            )
    CallRecord.objects.bulk_create(rows, batch_size=2000)
    return companies


def write_cdr_file(path: Path, numbers: list[str], rows: int, *, bad_every: int):
    """A carrier file of ``rows`` March calls over ``numbers``; every
    ``bad_every``-th row has an unknown number (rejected). Returns the call
    ids of the valid rows."""
    rng = random.Random(rows)
    valid = []
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            [
                "call_id",
                "service_number",
                "caller_number",
                "caller_area",
                "answer_number",
                "start_time",
                "duration_seconds",
                "direction",
                "status",
            ]
        )
        for i in range(rows):
            call_id = f"K{i:07d}"
            if i % bad_every == bad_every - 1:
                number = "4009999999"  # never subscribed
            else:
                number = numbers[i % len(numbers)]
                valid.append(call_id)
            second = rng.randrange(31 * 86400)
            start = dt.datetime(2026, 3, 1) + dt.timedelta(seconds=second)
            missed = rng.random() < 0.1
            writer.writerow(
                [
                    call_id,
                    number,
                    f"138{rng.randrange(10**8):08d}",
                    "广东深圳",
                    "",
                    f"{start:%Y-%m-%d %H:%M:%S}",
                    0 if missed else rng.randint(5, 600),
                    "inbound",
                    "missed" if missed else "answered",
                ]
            )
    return valid
