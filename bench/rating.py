"""Rating speed: 1,000 numbers × ~1,000 calls of one month, in 10 time-ordered batches.

``python -m bench rating`` (own database ``hotline400_bench_rating``, rebuilt on
every run). Measures (a) the floor: COPY of the unrated calls into the call
table, batch by batch; (b) the import's way: ``RatingSession.rate_incoming``
per batch, then COPY of the rated rows and ``finish``; (c) re-rating every
month from scratch (nothing may change); (d) one early late call per number
(every month re-rated). Target: (b) within 1.5× of (a), so an import with
rating stays well within 3× of a bare COPY.
"""

import datetime as dt
import io
import os
import random
from zoneinfo import ZoneInfo

os.environ.setdefault(
    "BENCH_DATABASE_URL",
    "postgres://postgres@127.0.0.1:5432/hotline400_bench_rating",
)

from bench import common

NUMBERS = int(os.environ.get("BENCH_NUMBERS", "1000"))
CALLS_PER_NUMBER = int(os.environ.get("BENCH_CALLS_PER_NUMBER", "1000"))
MARCH = dt.date(2026, 3, 1)
SH = ZoneInfo("Asia/Shanghai")


def _fresh_database() -> None:
    from urllib.parse import urlparse

    import psycopg

    url = os.environ["BENCH_DATABASE_URL"]
    name = urlparse(url).path.lstrip("/")
    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _setup():
    from accounts.models import Company
    from plans.models import PhoneNumber, Subscription, SubscriptionPlanPeriod
    from tests.factories import (
        AgentFactory,
        CompanyFactory,
        PlanFactory,
        TermPlanFactory,
        ensure_catalog_basics,
    )

    ensure_catalog_basics()
    agent = AgentFactory()
    companies = [CompanyFactory(agent=agent) for _ in range(20)]
    monthly = PlanFactory(code="bench-monthly")
    term = TermPlanFactory(code="bench-term")
    numbers = PhoneNumber.objects.bulk_create(
        PhoneNumber(number=f"4009{i:06d}", carrier="telecom", status="subscribed")
        for i in range(NUMBERS)
    )
    subs = Subscription.objects.bulk_create(
        Subscription(
            company=companies[i % len(companies)],
            number=n,
            status="active",
            activated_on=dt.date(2025, 11, 15) if i % 4 == 0 else MARCH,
        )
        for i, n in enumerate(numbers)
    )
    SubscriptionPlanPeriod.objects.bulk_create(
        SubscriptionPlanPeriod(
            subscription=s,
            plan=term if i % 4 == 0 else monthly,
            start_date=s.activated_on,
        )
        for i, s in enumerate(subs)
    )
    assert Company.objects.count() == len(companies)
    return subs


BATCHES = 10


def _batch(subs, k: int, rnd: random.Random):
    """Calls of batch ``k`` (a tenth of the month, every number), time-ordered."""
    from billing.rating import CallIn

    month = dt.datetime(2026, 3, 1, tzinfo=SH)
    span = 31 * 86400 // BATCHES
    per = CALLS_PER_NUMBER // BATCHES
    out = []
    for s in subs:
        for j in range(per):
            start = month + dt.timedelta(seconds=k * span + rnd.randrange(span))
            answered = rnd.random() < 0.85
            duration = int(rnd.expovariate(1 / 150)) if answered else 0
            direction = "inbound" if rnd.random() < 0.8 else "outbound"
            out.append(
                (
                    s,
                    CallIn(
                        f"C{s.pk:05d}{k:02d}{j:04d}",
                        start,
                        duration,
                        direction,
                        answered,
                    ),
                )
            )
    out.sort(key=lambda x: x[1].start)
    return out


def _tsv(batch, ratings=None, rated_at="") -> io.StringIO:
    buf = io.StringIO()
    now = dt.datetime.now(dt.UTC).isoformat()
    for s, c in batch:
        r = ratings[c.call_id] if ratings else None
        rating = (
            f"{r.band}\t{r.billable_minutes}\t{r.pool_minutes}\t"
            f"{r.charged_minutes}\t{r.rate}\t{r.amount}\t{rated_at}"
            if r
            else "\t0\t0\t0\t0\t0\t\\N"
        )
        buf.write(
            f"{c.call_id}\t{s.company_id}\t{s.pk}\t{s.number_id}\t"
            f"{c.start.isoformat()}\t2026-03-01\t{c.duration_seconds}\t"
            f"{c.direction}\t{'answered' if c.answered else 'missed'}\t"
            f"{rating}\t{now}\t\t\t\n"
        )
    buf.seek(0)
    return buf


COLUMNS = (
    "call_id, company_id, subscription_id, number_id, start_time, period,"
    " duration_seconds, direction, status, band, billable_minutes, pool_minutes,"
    " charged_minutes, rate, amount, rated_at, created_at, caller_number,"
    " caller_area,"
    " answer_number"
)


def _copy(connection, buf) -> None:
    sql = f"COPY billing_callrecord ({COLUMNS}) FROM STDIN"
    with connection.cursor() as cur, cur.copy(sql) as copy:
        while chunk := buf.read(1 << 20):
            copy.write(chunk)


def main() -> int:
    _fresh_database()
    common.setup_django()
    from django.db import connection, transaction

    from billing.models import CallRecord
    from billing.services.rating import IncomingCall, RatingSession, calls_rate_many

    subs = _setup()
    keys = [(s.pk, MARCH) for s in subs]

    # (a) the floor: COPY of the unrated calls, batch by batch.
    t_floor = 0.0
    rnd = random.Random(400)
    for k in range(BATCHES):
        buf = _tsv(_batch(subs, k, rnd))
        with common.timed() as t:
            _copy(connection, buf)
        t_floor += t()
    total = CallRecord.objects.count()
    with connection.cursor() as cur:
        cur.execute("TRUNCATE billing_callrecord")

    # (b) the import's way: rate each batch, then COPY the rated rows.
    t_rate = t_insert = 0.0
    session = RatingSession()
    rnd = random.Random(400)
    rerated = 0
    for k in range(BATCHES):
        batch = _batch(subs, k, rnd)
        with transaction.atomic():
            with common.timed() as t:
                result = session.rate_incoming(IncomingCall(s.pk, c) for s, c in batch)
            t_rate += t()
            buf = _tsv(batch, result.ratings, result.rated_at.isoformat())
            with common.timed() as t:
                _copy(connection, buf)
                rerated += session.finish(result).changed
            t_insert += t()
        del batch, buf, result
    with connection.cursor() as cur:
        cur.execute("ANALYZE billing_callrecord")

    # (c) re-rating every month from scratch: nothing may change.
    with common.timed() as t_again:
        again = calls_rate_many(keys=keys)
    # (d) one early late call per number: every month re-rated.
    late = [
        CallRecord(
            call_id=f"L{s.pk:09d}",
            company_id=s.company_id,
            subscription_id=s.pk,
            number_id=s.number_id,
            start_time=dt.datetime(2026, 3, 1, 0, 0, 1, tzinfo=SH),
            period=MARCH,
            duration_seconds=600,
            direction="inbound",
            status="answered",
        )
        for s in subs
    ]
    CallRecord.objects.bulk_create(late, batch_size=1000)
    with common.timed() as t_late:
        after_late = calls_rate_many(keys=keys)

    common.report("calls", f"{total:,} ({BATCHES} batches)")
    common.report("(a) COPY of unrated calls (floor)", f"{t_floor:.2f}", "s")
    common.report("(b) rating before insert", f"{t_rate:.2f}", "s")
    common.report("(b) COPY of rated calls + finish", f"{t_insert:.2f}", "s")
    ratio = (t_rate + t_insert) / t_floor
    common.report("(b) / (a)", f"{ratio:.2f}")
    common.report("rows re-rated after insert", rerated)
    common.report(
        "(c) full re-rating, nothing changed",
        f"{t_again():.2f} s, {again.calls:,} calls, {again.changed} rows written",
    )
    common.report(
        "(d) one early late call per number",
        f"{t_late():.2f} s, {after_late.changed:,} rows written",
    )
    common.report("peak memory", f"{common.peak_rss_mb():.0f}", "MB")
    ok = again.changed == 0 and rerated == 0 and ratio <= 1.5
    return 0 if ok else 1
