"""The import's set-based SQL rating equals the pure core, column for column.

Given random months (holidays, make-up workdays, peak-hour boundaries, split
calls, exactly-empty pools, partial months, plan changes, term segments with
pool used before, outbound, missed, zero-length calls, ties on the start
broken by call id) staged in PostgreSQL, when ``rate_staged`` rates them,
then every rating column equals ``billing.rating.rate_month``'s.
"""

import datetime as dt
import random
from decimal import Decimal as D

import pytest
from django.db import IntegrityError, connection, transaction

from billing import rating as core
from billing.models import CallRecord, CdrImport
from billing.services.cdr_import import cdr_import_run
from billing.services.cdr_import_sql import rate_staged
from billing.services.rating import calls_rate_many
from tests.billing import cdr_fixtures

cdr_world = cdr_fixtures.cdr_world

SH = core.SHANGHAI
BOUNDARY_TIMES = [
    dt.time(7, 59, 59),
    dt.time(8, 0, 0),
    dt.time(19, 59, 59),
    dt.time(20, 0, 0),
    dt.time(0, 0, 0),
    dt.time(23, 59, 59),
    dt.time(9, 30, 0),
    dt.time(17, 59, 59),
    dt.time(18, 0, 0),
]
ID_CHARS = "aAbB019中z_-"


def _tariff(rng: random.Random) -> core.Tariff:
    def rate() -> D:
        return D(rng.randrange(0, 50_000)) / 10_000

    return core.Tariff(rate(), rate(), rate())


def _plan(rng: random.Random, plan_id: int, term: bool) -> core.PlanTerms:
    return core.PlanTerms(
        plan_id=plan_id,
        term_months=rng.choice([12, 24, 36]) if term else 1,
        price=D("100.00"),
        included_minutes=rng.choice([0, 1, 5, 30, 200, 3000]),
        tariff=_tariff(rng),
    )


def _segments(rng: random.Random, period: dt.date) -> list[core.Segment]:
    """One subscription-month: monthly, term, partial, plan change, pool used."""
    first, _last = core.month_bounds(period)
    kind = rng.choice(["monthly", "term", "partial", "change", "term_ends"])
    used = rng.choice([0, 0, 3, 29, 30, 5000])
    if kind == "monthly":
        periods = [core.PlanPeriod(_plan(rng, 1, False), None)]
        activated, ended = first - dt.timedelta(days=40), None
    elif kind == "term":
        periods = [core.PlanPeriod(_plan(rng, 2, True), None)]
        activated, ended = dt.date(period.year - 1, rng.randint(1, 12), 15), None
    elif kind == "partial":
        periods = [core.PlanPeriod(_plan(rng, 3, rng.random() < 0.3), None)]
        activated = first + dt.timedelta(days=rng.randint(0, 20))
        ended = activated + dt.timedelta(days=rng.randint(0, 10))
    elif kind == "change":
        switch = first + dt.timedelta(days=rng.randint(1, 25))
        periods = [
            core.PlanPeriod(_plan(rng, 4, False), None, switch - dt.timedelta(days=1)),
            core.PlanPeriod(_plan(rng, 5, rng.random() < 0.5), switch),
        ]
        activated, ended = first - dt.timedelta(days=90), None
    else:  # a term ends mid-month, the next one starts the next day
        term = _plan(rng, 6, True)
        day = rng.randint(2, 27)
        activated = dt.date(period.year - term.term_months // 12, period.month, day)
        periods = [core.PlanPeriod(term, None)]
        ended = None
    return core.month_segments(
        periods=periods,
        activated_on=activated,
        ended_on=ended,
        period=period,
        pool_used_before=used,
    )


def _calendar(rng: random.Random, period: dt.date) -> core.Calendar:
    first, last = core.month_bounds(period)
    days = [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]
    holidays = {d: core.HOLIDAY for d in rng.sample(days, 4)}
    weekend = [d for d in days if d.isoweekday() >= 6 and d not in holidays]
    holidays.update({d: core.WORKDAY for d in rng.sample(weekend, 2)})
    if rng.random() < 0.5:
        return core.Calendar(holidays=holidays)
    return core.Calendar(
        peak_start=dt.time(9, 30),
        peak_end=dt.time(18, 0),
        peak_weekdays=frozenset(rng.sample(range(1, 8), rng.randint(0, 7))),
        holidays=holidays,
    )


def _calls(rng, segs, period, prefix, n, outside: bool) -> list[core.CallIn]:
    days = [
        s.start_date + dt.timedelta(days=i) for s in segs for i in range(s.active_days)
    ]
    first, last = core.month_bounds(period)
    if outside:
        gaps = [
            first + dt.timedelta(days=i)
            for i in range((last - first).days + 1)
            if first + dt.timedelta(days=i) not in days
        ]
        days = days + gaps[:1] if gaps else days
    calls = []
    shared = dt.datetime.combine(rng.choice(days), dt.time(8, 0), SH)
    for i in range(n):
        if rng.random() < 0.15:
            start = shared  # ties, broken by call id
        else:
            day = rng.choice(days)
            t = (
                rng.choice(BOUNDARY_TIMES)
                if rng.random() < 0.5
                else dt.time(rng.randrange(24), rng.randrange(60), rng.randrange(60))
            )
            start = dt.datetime.combine(day, t, SH)
        call_id = prefix + "".join(rng.choices(ID_CHARS, k=3)) + f"#{i}"
        duration = rng.choice(
            [0, 1, 59, 60, 61, 119, 120, rng.randrange(0, 4000), 2_147_483_647]
            if rng.random() < 0.05
            else [0, 1, 59, 60, 61, 119, 120, rng.randrange(0, 4000)]
        )
        calls.append(
            core.CallIn(
                call_id,
                start,
                duration,
                rng.choice(["inbound", "inbound", "inbound", "outbound"]),
                rng.random() < 0.85,
            )
        )
    return calls


def _stage(cur, rows) -> None:
    cur.execute(
        "CREATE TEMP TABLE t_stage (line integer, call_id varchar(64),"
        " subscription_id bigint, period date, start_local timestamp,"
        " duration_seconds integer, direction varchar(8), status varchar(8))"
    )
    cur.execute(
        "CREATE TEMP TABLE t_out (line integer, band varchar(8), billable integer,"
        " pool integer, charged integer, rate numeric(8,4), amount numeric(14,4))"
    )
    with cur.copy(
        "COPY t_stage (line, call_id, subscription_id, period, start_local,"
        " duration_seconds, direction, status) FROM STDIN"
    ) as copy:
        for row in rows:
            copy.write_row(row)


@pytest.mark.django_db
@pytest.mark.parametrize("seed", range(40))
def test_sql_rating_equals_the_core(seed):
    # given random subscription-months staged in PostgreSQL
    rng = random.Random(seed)
    period = rng.choice([dt.date(2026, 2, 1), dt.date(2026, 5, 1), dt.date(2024, 2, 1)])
    calendar = _calendar(rng, period)
    segments, expected, rows, outside_keys = {}, {}, [], set()
    for sub_id in range(1, 9):
        segs = _segments(rng, period)
        if not segs:
            continue
        outside = rng.random() < 0.15
        calls = _calls(rng, segs, period, f"s{sub_id}", rng.randint(1, 60), outside)
        key = (sub_id, period)
        segments[key] = segs
        try:
            ratings = core.rate_month(calls, segs, calendar)
        except core.RatingError:
            outside_keys.add(key)
        else:
            expected[key] = {r.call_id: r for r in ratings}
        for call in calls:
            local = call.start.astimezone(SH).replace(tzinfo=None)
            rows.append(
                (
                    len(rows) + 1,
                    call.call_id,
                    sub_id,
                    period,
                    local,
                    call.duration_seconds,
                    call.direction,
                    "answered" if call.answered else "missed",
                )
            )
    rng.shuffle(rows)  # arrival order must not matter
    with connection.cursor() as cur:
        _stage(cur, rows)
        # when the SQL path rates them
        keys, rated = rate_staged(
            cur,
            stage="t_stage",
            out="t_out",
            segments=segments,
            calendar=calendar,
            suffix="t",
        )
        cur.execute(
            "SELECT s.subscription_id, s.call_id, o.band, o.billable, o.pool,"
            " o.charged, o.rate, o.amount FROM t_out o JOIN t_stage s USING (line)"
        )
        got = cur.fetchall()
    # then the months with a call outside their segments are left out and
    # every other call is rated exactly like the core rates it
    assert keys == set(expected)
    assert not keys & outside_keys
    assert rated == sum(len(v) for v in expected.values()) == len(got)
    for sub_id, call_id, band, billable, pool, charged, rate, amount in got:
        want = expected[(sub_id, period)][call_id]
        assert (band, billable, pool, charged, rate, amount) == (
            want.band,
            want.billable_minutes,
            want.pool_minutes,
            want.charged_minutes,
            want.rate,
            want.amount,
        ), call_id


@pytest.mark.django_db
def test_sql_rating_of_an_exactly_empty_pool_and_a_split_call():
    # given a 10-minute pool and three inbound calls of 4, 6 and 3 minutes
    plan = core.PlanTerms(1, 1, D("10"), 10, core.Tariff(D("0.5"), D("0.25"), D("1")))
    period = dt.date(2026, 3, 1)
    segs = core.month_segments(
        periods=[core.PlanPeriod(plan, None)],
        activated_on=dt.date(2026, 1, 1),
        ended_on=None,
        period=period,
    )
    rows = [
        (1, "c", 1, period, dt.datetime(2026, 3, 2, 9), 180, "inbound", "answered"),
        (2, "a", 1, period, dt.datetime(2026, 3, 2, 8), 240, "inbound", "answered"),
        (3, "b", 1, period, dt.datetime(2026, 3, 2, 8), 360, "inbound", "answered"),
        (4, "d", 1, period, dt.datetime(2026, 3, 2, 10), 600, "outbound", "answered"),
    ]
    with connection.cursor() as cur:
        _stage(cur, rows)
        # when rated in SQL
        rate_staged(
            cur,
            stage="t_stage",
            out="t_out",
            segments={(1, period): segs},
            calendar=core.Calendar(),
            suffix="t",
        )
        cur.execute("SELECT line, pool, charged, amount FROM t_out ORDER BY line")
        got = cur.fetchall()
    # then a (4) and b (6) empty the pool exactly, c is charged, d never uses it
    assert got == [
        (1, 0, 3, D("1.5000")),
        (2, 4, 0, D("0.0000")),
        (3, 6, 0, D("0.0000")),
        (4, 0, 10, D("10.0000")),
    ]


@pytest.mark.django_db
def test_an_imported_fresh_month_needs_no_re_rating(tmp_path, cdr_world):
    # given a file of one fresh month for a subscribed number
    number, subscription = "400-810-0001", cdr_world.sub_a1
    lines = [
        "call_id,service_number,caller_number,start_time,duration_seconds,"
        "direction,status"
    ]
    rng = random.Random(7)
    for i in range(300):
        day = rng.randint(1, 31)
        t = rng.choice(BOUNDARY_TIMES)
        lines.append(
            f"X{i:04d},{number},13800138000,2026-05-{day:02d} {t},"
            f"{rng.choice([0, 59, 61, 600, 3600])},"
            f"{rng.choice(['inbound', 'outbound', '呼入'])},"
            f"{rng.choice(['answered', 'missed', '接通'])}"
        )
    path = tmp_path / "may.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    imp = CdrImport.objects.create(source=CdrImport.Source.COMMAND)
    # when it is imported on the SQL path
    with open(path, "rb") as stream:
        imp = cdr_import_run(cdr_import=imp, stream=stream, fast=True)
    # then every call is rated and the rating service changes nothing
    assert imp.imported == 300
    assert not CallRecord.objects.filter(rated_at__isnull=True).exists()
    summary = calls_rate_many(keys=[(subscription.pk, dt.date(2026, 5, 1))])
    assert summary.changed == 0
    assert CallRecord.objects.filter(pool_minutes__gt=0).exists()
    assert CallRecord.objects.filter(charged_minutes__gt=0).exists()


@pytest.mark.django_db
def test_a_call_id_reserved_by_an_import_cannot_be_stored_by_another_writer(
    tmp_path, cdr_world, monkeypatch
):
    # given a file of two calls, and a writer that does not take the
    # call-insert lock trying to store one of them while the import rates
    from billing.services import cdr_import as service

    path = tmp_path / "two.csv"
    path.write_text(
        "call_id,service_number,caller_number,start_time,duration_seconds,"
        "direction,status\n"
        "M1,4008100001,13800138000,2026-05-04 09:00:00,61,inbound,answered\n"
        "M2,4008100001,13800138000,2026-05-04 10:00:00,61,inbound,answered\n",
        encoding="utf-8",
    )
    original = service._PgLoader._rate
    refused = []

    def rate_then_other_writer(self, session, sql_rating):
        out = original(self, session, sql_rating)
        sub = cdr_world.sub_a1
        try:
            with transaction.atomic():
                CallRecord.objects.create(
                    call_id="M2",
                    company_id=sub.company_id,
                    subscription=sub,
                    number_id=sub.number_id,
                    start_time=dt.datetime(2026, 5, 4, 10, tzinfo=SH),
                    period=dt.date(2026, 5, 1),
                    duration_seconds=61,
                    direction="inbound",
                    status="answered",
                )
        except IntegrityError:
            refused.append("M2")
        return out

    monkeypatch.setattr(service._PgLoader, "_rate", rate_then_other_writer)
    imp = CdrImport.objects.create(source=CdrImport.Source.COMMAND)
    # when the file is imported
    with open(path, "rb") as stream:
        imp = cdr_import_run(cdr_import=imp, stream=stream, fast=True)
    # then the other writer was refused: the import had reserved the call id
    assert refused == ["M2"]
    # and the import stored both calls, once each, rated
    assert (imp.status, imp.imported, imp.duplicates) == ("done", 2, 0)
    assert sorted(CallRecord.objects.values_list("call_id", flat=True)) == [
        "M1",
        "M2",
    ]
    assert not CallRecord.objects.filter(rated_at__isnull=True).exists()
