"""Bill pages at 100,000 calls: the invoice page and the calls drill-down.

A company with 100,000 calls in March 2026 on one 400 number and an issued
invoice; a second company with 1,000 calls shows that the number of queries
per page does not depend on the size of the month. Pages are fetched with
Django's test Client against PostgreSQL (database ``hotline400_bench``);
targets: p95 under 100 ms and the same query count at 1,000 and 100,000
calls. Data are built once and reused on the next run.

    .venv/bin/python -m bench bill_pages
"""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal
from zoneinfo import ZoneInfo

from bench.common import percentile, report, setup_django, timed

SHANGHAI = ZoneInfo("Asia/Shanghai")
PERIOD = dt.date(2026, 3, 1)
RUNS = 60
TARGET_MS = 100.0
SIZES = (1_000, 100_000)


def _band(start: dt.datetime) -> str:
    local = start.astimezone(SHANGHAI)
    return "peak" if local.isoweekday() <= 5 and 8 <= local.hour < 20 else "offpeak"


def _build(size: int):
    """The company of ``size`` calls (created on first use)."""
    from accounts.models import Agent, Company, User
    from billing.models import CallRecord, Invoice, InvoiceLine
    from billing.money import line_amount
    from plans.models import PhoneNumber, Plan, Subscription, SubscriptionPlanPeriod
    from tests.factories import ensure_catalog_basics, make_uscc

    name = f"bench-bills-{size}"
    company = Company.objects.filter(name=name).first()
    if (
        company is not None
        and Invoice.objects.filter(company=company, status="issued").exists()
    ):
        return company, User.objects.get(email=f"{name}@bench.example.cn")
    ensure_catalog_basics()
    agent, _ = Agent.objects.get_or_create(name="bench-bills-agent")
    company = Company.objects.create(
        agent=agent,
        name=name,
        uscc=make_uscc(8_000_000 + size % 1_000_000 // 1000),
        address="上海市浦东新区",
        billing_email=f"{name}@bench.example.cn",
        contact_phone="+8613800138000",
        verification_status="approved",
    )
    user = User.objects.create_user(
        email=f"{name}@bench.example.cn", company=company, role="finance"
    )
    plan, _ = Plan.objects.get_or_create(
        code="bench-monthly",
        defaults=dict(
            name_zh="基础包月",
            name_en="Basic monthly",
            term_months=1,
            price=Decimal("199.00"),
            included_minutes=1000,
            rate_inbound_peak=Decimal("0.1500"),
            rate_inbound_offpeak=Decimal("0.1000"),
            rate_outbound=Decimal("0.2000"),
        ),
    )
    number = PhoneNumber.objects.create(
        number=f"40097{size % 100000:05d}", carrier="telecom", status="subscribed"
    )
    sub = Subscription.objects.create(
        company=company,
        number=number,
        status="active",
        activated_on=dt.date(2026, 1, 1),
    )
    SubscriptionPlanPeriod.objects.create(
        subscription=sub, plan=plan, start_date=dt.date(2026, 1, 1)
    )

    rng = random.Random(size)
    month_seconds = 31 * 86400
    start0 = dt.datetime(2026, 3, 1, tzinfo=SHANGHAI)
    raw = sorted(
        (
            start0 + dt.timedelta(seconds=rng.randrange(month_seconds)),
            f"b{size}-{i:07d}",
            rng.random() < 0.9,
            rng.randrange(5, 600),
        )
        for i in range(size)
    )
    pool = plan.included_minutes
    calls = []
    for start, call_id, answered, seconds in raw:
        band = _band(start)
        billable = -(-seconds // 60) if answered else 0
        take = min(pool, billable)
        pool -= take
        rate = plan.rate_inbound_peak if band == "peak" else plan.rate_inbound_offpeak
        calls.append(
            CallRecord(
                call_id=call_id,
                company=company,
                subscription=sub,
                number=number,
                caller_number=f"139{rng.randrange(10**8):08d}",
                caller_area=rng.choice(["广东深圳", "北京", "上海", "浙江杭州"]),
                start_time=start,
                period=PERIOD,
                duration_seconds=seconds if answered else 0,
                direction="inbound",
                status="answered" if answered else "missed",
                band=band,
                billable_minutes=billable,
                pool_minutes=take,
                charged_minutes=billable - take,
                rate=rate,
                amount=rate * (billable - take),
                rated_at=start0,
            )
        )
    CallRecord.objects.bulk_create(calls, batch_size=5000)

    invoice = Invoice.objects.create(company=company, period=PERIOD)
    lines = [
        InvoiceLine(
            invoice=invoice,
            subscription=sub,
            number_display=number.number,
            position=1,
            kind="plan_fee",
            usage_period=PERIOD,
            description="套餐月费",
            tax_category="basic",
            tax_rate=Decimal("0.09"),
            quantity=Decimal(1),
            unit="月",
            unit_price=plan.price,
            amount=plan.price,
        )
    ]
    for position, band in ((2, "peak"), (3, "offpeak")):
        sel = [c for c in calls if c.band == band and c.status == "answered"]
        charged = sum(c.charged_minutes for c in sel)
        rate = plan.rate_inbound_peak if band == "peak" else plan.rate_inbound_offpeak
        lines.append(
            InvoiceLine(
                invoice=invoice,
                subscription=sub,
                number_display=number.number,
                position=position,
                kind=f"inbound_{band}",
                usage_period=PERIOD,
                description=f"呼入 {'高峰' if band == 'peak' else '低峰'}",
                tax_category="basic",
                tax_rate=Decimal("0.09"),
                quantity=Decimal(charged),
                unit="分钟",
                unit_price=rate,
                amount=line_amount(charged, rate),
                billable_minutes=sum(c.billable_minutes for c in sel),
                pool_minutes=sum(c.pool_minutes for c in sel),
                charged_minutes=charged,
            )
        )
    InvoiceLine.objects.bulk_create(lines)
    total = sum(line.amount for line in lines)
    Invoice.objects.filter(pk=invoice.pk).update(
        status="issued",
        number=f"HL-2026-9{size % 100000:05d}",
        total=total,
        issued_at=dt.datetime(2026, 4, 1, 9, tzinfo=SHANGHAI),
        due_date=dt.date(2026, 4, 16),
        seller_name=agent.name,
        buyer_name=company.name,
        buyer_uscc=company.uscc,
    )
    CallRecord.objects.filter(company=company, period=PERIOD).update(invoice=invoice)
    return company, user


def _measure(client, url: str, params=None) -> tuple[list[float], int]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.get(url, params or {})  # warm-up
    times = []
    queries = 0
    for _ in range(RUNS):
        with CaptureQueriesContext(connection) as ctx, timed() as t:
            response = client.get(url, params or {})
        assert response.status_code == 200, (url, response.status_code)
        times.append(t() * 1000)
        queries = len(ctx.captured_queries)
    return times, queries


def main() -> int:
    setup_django()
    from django.db import connection
    from django.test import Client
    from django.urls import reverse

    from billing.models import CallRecord, Invoice, InvoiceLine
    from billing.selectors.bills import PAGE_SIZE, line_calls

    failures = 0
    query_counts: dict[str, dict[int, int]] = {}
    for size in SIZES:
        with timed() as t:
            company, user = _build(size)
        with connection.cursor() as cur:
            # Fresh statistics, as autovacuum would have gathered by now.
            cur.execute("ANALYZE billing_callrecord")
        calls = CallRecord.objects.filter(company=company).count()
        report(
            f"[{size:,}] data ready (calls in the month: {calls:,})", f"{t():.1f}", "s"
        )
        invoice = Invoice.objects.get(company=company, period=PERIOD)
        peak = InvoiceLine.objects.get(invoice=invoice, kind="inbound_peak")
        qs = line_calls(company=company, line=peak)
        n_line = qs.count()
        deep_offset = max(0, n_line - PAGE_SIZE - 1)
        deep_cursor = qs.values_list("pk", flat=True)[deep_offset]
        client = Client()
        client.force_login(user)
        # The first view of a line sums its calls (then cached: an issued
        # invoice's calls never change); report that cold cost too.
        from django.core.cache import cache

        cache.delete(f"bills:line-sums:v1:{peak.pk}")
        url = reverse("billing:line_calls", kwargs={"pk": peak.pk})
        with timed() as cold:
            client.get(url)
        report(
            f"[{size:,}] calls, first view of the line (cold)",
            f"{cold() * 1000:.1f}",
            "ms",
        )
        pages = {
            "invoice page": (
                reverse("billing:invoice_detail", kwargs={"pk": invoice.pk}),
                None,
            ),
            "calls, first page": (
                reverse("billing:line_calls", kwargs={"pk": peak.pk}),
                None,
            ),
            f"calls, deep page (after call #{deep_offset:,})": (
                reverse("billing:line_calls", kwargs={"pk": peak.pk}),
                {"after": deep_cursor},
            ),
        }
        for label, (url, params) in pages.items():
            times, queries = _measure(client, url, params)
            p50, p95 = percentile(times, 50), percentile(times, 95)
            key = label.split(" (")[0]
            query_counts.setdefault(key, {})[size] = queries
            ok = p95 < TARGET_MS
            failures += not ok
            report(
                f"[{size:,}] {label}",
                f"p50 {p50:.1f} ms, p95 {p95:.1f} ms, {queries} queries "
                f"{'OK' if ok else 'SLOW'}",
            )
        report(f"[{size:,}] calls on the peak line", f"{n_line:,}")
    print()
    for label, counts in query_counts.items():
        same = len(set(counts.values())) == 1
        failures += not same
        report(
            f"queries, {label}",
            ", ".join(f"{counts[s]} at {s:,} calls" for s in SIZES)
            + (" (constant)" if same else " (GROWS)"),
        )
    return 1 if failures else 0
