"""Demo calls and invoices (seed_demo, after the plans and subscriptions).

For every active subscription of the demo companies: realistic calls for the
last three months and the current month so far (business hours mostly,
evenings, weekends, missed calls, a few outbound), rated by the rating
engine; then the invoices of the two months before last are issued and last
month's is left as a draft for the back office to issue. Idempotent: calls
have deterministic ids (existing ones are skipped) and invoices are built
once.
"""

import datetime as dt
import random
from zoneinfo import ZoneInfo

from django.utils import timezone

from accounts.models import Company
from billing import rating as core
from billing.models import CallKey, CallRecord, Invoice
from billing.services.invoices import (
    invoice_generate,
    invoice_issue,
    previous_month,
    rate_pending,
)
from plans.models import Subscription

SH = ZoneInfo("Asia/Shanghai")
AREAS = [
    "广东深圳",
    "广东广州",
    "北京",
    "上海",
    "浙江杭州",
    "四川成都",
    "湖北武汉",
    "江苏南京",
]
HOURS = [9, 9, 10, 10, 10, 11, 11, 14, 14, 15, 15, 16, 16, 17, 18, 19, 20, 21, 22]


def _mobile(rng) -> str:
    return f"1{rng.choice('3589')}{rng.randint(0, 999999999):09d}"


def _calls_for(sub: Subscription, period: dt.date, until: dt.date, rng) -> list:
    first, last = core.month_bounds(period)
    start = max(first, sub.activated_on)
    end = min(last, until, sub.ended_on or last)
    calls = []
    day = start
    while day <= end:
        weekend = day.isoweekday() >= 6
        for i in range(rng.randint(1, 4) if weekend else rng.randint(4, 12)):
            when = dt.datetime(
                day.year,
                day.month,
                day.day,
                rng.choice(HOURS),
                rng.randint(0, 59),
                rng.randint(0, 59),
                tzinfo=SH,
            )
            outbound = rng.random() < 0.08
            answered = outbound or rng.random() < 0.88
            calls.append(
                CallRecord(
                    call_id=f"demo-{sub.pk}-{day:%Y%m%d}-{i:02d}",
                    company_id=sub.company_id,
                    subscription=sub,
                    number_id=sub.number_id,
                    caller_number=_mobile(rng),
                    caller_area=rng.choice(AREAS),
                    start_time=when,
                    period=period,
                    duration_seconds=(
                        int(rng.lognormvariate(4.6, 0.8)) + 5 if answered else 0
                    ),
                    direction="outbound" if outbound else "inbound",
                    status="answered" if answered else "missed",
                )
            )
        day += dt.timedelta(days=1)
    return calls


def seed(*, stdout) -> None:
    today = timezone.localdate()
    this_month = today.replace(day=1)
    months = [this_month]
    for _ in range(3):
        months.insert(0, previous_month(months[0]))
    subs = Subscription.objects.filter(
        status__in=[Subscription.Status.ACTIVE, Subscription.Status.ENDED],
        activated_on__isnull=False,
    ).select_related("company")
    created = 0
    for sub in subs:
        rng = random.Random(f"demo-{sub.pk}")
        for period in months:
            if period > today:
                continue
            calls = _calls_for(sub, period, today, rng)
            # Seeding twice changes nothing: calls already stored are skipped.
            stored = set(
                CallKey.objects.filter(
                    call_id__in=[c.call_id for c in calls]
                ).values_list("call_id", flat=True)
            )
            calls = [c for c in calls if c.call_id not in stored]
            CallRecord.objects.bulk_create(calls, batch_size=2000)
            created += len(calls)
    companies = Company.objects.filter(
        pk__in=subs.values_list("company_id", flat=True)
    ).order_by("pk")
    issued = drafts = 0
    for company in companies:
        rate_pending(company=company, period=this_month)
        for period in months[:-1]:
            invoice = invoice_generate(company=company, period=period)
            if invoice is None:
                continue
            if period < months[-2] and invoice.status == Invoice.Status.DRAFT:
                # Demo history: staff issued these (past the sanity check).
                issued_at = dt.datetime(
                    period.year, period.month, 1, 9, 0, tzinfo=SH
                ) + dt.timedelta(days=32)
                invoice_issue(invoice=invoice, now=issued_at, force=True, rate=False)
                issued += 1
            elif invoice.status == Invoice.Status.DRAFT:
                drafts += 1
    stdout.write(
        f"  billing: {created} demo calls considered, {issued} invoices issued, "
        f"{drafts} drafts"
    )
