"""CDR import speed: a realistic 1,000,000-call month for 1,000 numbers.

``python -m bench cdr_import`` (own database ``hotline400_bench_cdr``, rebuilt
on every run; ``BENCH_CDR_CALLS`` / ``BENCH_CDR_NUMBERS`` shrink it).

Generates May 2026 for 1,000 companies with one number each (70 % monthly
plans, 30 % three-year term plans that started in 2025), busy and quiet
numbers, office-hours traffic, ~10 % missed and ~5 % outbound calls, the
Labour Day holidays and a make-up working day, written as the carrier would:
one CSV in start-time order. Then measures, in one run:

(a) the floor: ``COPY`` of the same file into a bare table with a primary key
    on call_id;
(b) ``manage.py import_cdrs FILE`` in a child process (validation, dedupe,
    rating, insert), its wall time, peak RSS and the time of each phase;
(c) for reference, what storing the rated rows alone costs: an INSERT … SELECT
    of the imported calls into an empty twin of the call table (its indexes,
    constraints and foreign key) — the part of (b) no import code can save.

Targets: (b) ≤ 3 × (a) and peak memory < 300 MB. Exits 1 when one is missed.
"""

import csv
import datetime as dt
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/hotline400_bench_cdr"
)

from bench import common

CALLS = int(os.environ.get("BENCH_CDR_CALLS", "1000000"))
NUMBERS = int(os.environ.get("BENCH_CDR_NUMBERS", "1000"))
MAY = dt.date(2026, 5, 1)
TARGET_RATIO = 3.0
TARGET_RSS_MB = 300
ROOT = Path(__file__).resolve().parent.parent

# Share of the day's calls per hour (office hours, a lunch dip, quiet nights).
HOUR_WEIGHTS = [
    1, 0.5, 0.3, 0.3, 0.3, 0.5, 1.5, 4, 9, 12, 12, 10,
    6, 8, 11, 11, 10, 8, 5, 3.5, 2.5, 2, 1.5, 1,
]  # fmt: skip
AREAS = ["广东深圳", "广东广州", "北京", "上海", "浙江杭州", "四川成都", "湖北武汉", ""]


def _fresh_database() -> None:
    from urllib.parse import urlparse

    import psycopg

    url = os.environ["BENCH_DATABASE_URL"]
    name = urlparse(url).path.lstrip("/")
    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _setup() -> list[str]:
    from accounts.models import Agent, Company
    from plans.models import (
        Holiday,
        PhoneNumber,
        Subscription,
        SubscriptionPlanPeriod,
    )
    from tests.factories import (
        PlanFactory,
        TermPlanFactory,
        ensure_catalog_basics,
        make_uscc,
    )

    ensure_catalog_basics()
    for day in range(1, 6):
        Holiday.objects.get_or_create(
            date=dt.date(2026, 5, day), defaults={"kind": "holiday", "name": "劳动节"}
        )
    Holiday.objects.get_or_create(
        date=dt.date(2026, 5, 9), defaults={"kind": "workday", "name": "劳动节调休"}
    )
    agent = Agent.objects.create(name="基准代理商")
    companies = Company.objects.bulk_create(
        Company(
            agent=agent,
            name=f"基准企业{i}",
            uscc=make_uscc(8_000_000 + i),
            address="广东省深圳市",
            billing_email=f"b{i}@bench.example.cn",
            contact_phone="+8613800138000",
            verification_status="approved",
        )
        for i in range(NUMBERS)
    )
    numbers = PhoneNumber.objects.bulk_create(
        PhoneNumber(number=f"4008{i:06d}", carrier="telecom", status="subscribed")
        for i in range(NUMBERS)
    )
    monthly = PlanFactory(code="bench-monthly", included_minutes=3000)
    term = TermPlanFactory(code="bench-term")
    rng = random.Random(4)
    subs = []
    for company, number in zip(companies, numbers, strict=True):
        is_term = rng.random() < 0.3
        start = (
            dt.date(2025, rng.randint(1, 12), rng.randint(1, 28))
            if is_term
            else dt.date(2026, rng.randint(1, 5), 1)
        )
        subs.append(
            (
                Subscription(
                    company=company, number=number, status="active", activated_on=start
                ),
                term if is_term else monthly,
            )
        )
    Subscription.objects.bulk_create([s for s, _ in subs])
    SubscriptionPlanPeriod.objects.bulk_create(
        SubscriptionPlanPeriod(subscription=s, plan=p, start_date=s.activated_on)
        for s, p in subs
    )
    return [n.number for n in numbers]


def _write_calls(path: Path, numbers: list[str]) -> None:
    rng = random.Random(400)
    # Busy and quiet numbers: a few take a large share of the calls.
    weights = [rng.paretovariate(1.2) for _ in numbers]
    days = 31
    per_day = [0] * days
    for _ in range(CALLS):
        per_day[rng.randrange(days)] += 1
    seq = 0
    hours = list(range(24))
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
        for day in range(days):
            date = MAY + dt.timedelta(days=day)
            n = per_day[day]
            chosen_hours = rng.choices(hours, HOUR_WEIGHTS, k=n)
            seconds = sorted(h * 3600 + rng.randrange(3600) for h in chosen_hours)
            chosen_numbers = rng.choices(numbers, weights, k=n)
            rows = []
            for second, number in zip(seconds, chosen_numbers, strict=True):
                seq += 1
                roll = rng.random()
                outbound = roll < 0.05
                missed = not outbound and roll < 0.15
                duration = 0 if missed else int(rng.lognormvariate(4.4, 0.9))
                caller = f"1{rng.randrange(30, 99)}****{rng.randrange(10000):04d}"
                rows.append(
                    (
                        f"CT{date:%Y%m%d}{seq:010d}",
                        number,
                        caller,
                        rng.choice(AREAS),
                        "+86139" + f"{rng.randrange(10**8):08d}",
                        f"{date} {second // 3600:02d}:{second // 60 % 60:02d}:"
                        f"{second % 60:02d}",
                        duration,
                        "outbound" if outbound else "inbound",
                        "missed" if missed else "answered",
                    )
                )
            writer.writerows(rows)


def _floor(path: Path) -> float:
    import psycopg

    with psycopg.connect(os.environ["BENCH_DATABASE_URL"]) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_cdr_floor")
        conn.execute(
            "CREATE TABLE bench_cdr_floor (call_id varchar(64) PRIMARY KEY,"
            " service_number text, caller_number text, caller_area text,"
            " answer_number text, start_time timestamp, duration_seconds integer,"
            " direction text, status text)"
        )
        conn.commit()
        conn.execute("CHECKPOINT")
        start = time.perf_counter()
        with (
            conn.cursor() as cur,
            cur.copy("COPY bench_cdr_floor FROM STDIN (FORMAT csv, HEADER true)") as cp,
            open(path, "rb") as handle,
        ):
            while chunk := handle.read(1 << 20):
                cp.write(chunk)
        conn.commit()
        elapsed = time.perf_counter() - start
        conn.execute("DROP TABLE bench_cdr_floor")
        conn.commit()
        conn.execute("CHECKPOINT")
    return elapsed


def _import(path: Path) -> tuple[float, float, str, list[str]]:
    env = dict(os.environ)
    env["DATABASE_URL"] = os.environ["BENCH_DATABASE_URL"]
    env.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
    env["LOG_LEVEL"] = "INFO"  # the import logs how long each phase took
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "manage.py", "import_cdrs", str(path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    if proc.returncode != 0:
        print(proc.stdout, proc.stderr)
        raise SystemExit(f"import_cdrs exited {proc.returncode}")
    phases = [
        line.split("billing.services.cdr_import ", 1)[1]
        for line in proc.stderr.splitlines()
        if "billing.services.cdr_import CDR import" in line
    ]
    return elapsed, peak, proc.stdout.strip(), phases


def _insert_floor() -> tuple[float, float]:
    """(c) What storing the rows alone costs: the imported calls copied into an
    empty twin of the call table (same indexes, constraints and foreign key
    to the invoice), in the import's order; (insert, commit) seconds."""
    import psycopg

    with psycopg.connect(os.environ["BENCH_DATABASE_URL"]) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_call_twin")
        conn.execute(
            "CREATE TABLE bench_call_twin (LIKE billing_callrecord INCLUDING ALL)"
        )
        conn.execute(
            "ALTER TABLE bench_call_twin ADD FOREIGN KEY (invoice_id)"
            " REFERENCES billing_invoice (id) DEFERRABLE INITIALLY DEFERRED"
        )
        conn.commit()
        conn.execute("CHECKPOINT")
        start = time.perf_counter()
        conn.execute(
            "INSERT INTO bench_call_twin SELECT * FROM billing_callrecord"
            " ORDER BY subscription_id, period, start_time, call_id"
        )
        inserted = time.perf_counter()
        conn.commit()
        done = time.perf_counter()
        conn.execute("DROP TABLE bench_call_twin")
        conn.commit()
    return inserted - start, done - inserted


def _verify() -> tuple[int, int, int]:
    from billing.models import CallRecord
    from billing.services.rating import calls_rate_many

    total = CallRecord.objects.count()
    unrated = CallRecord.objects.filter(rated_at__isnull=True).count()
    sample = list(
        CallRecord.objects.values_list("subscription_id", "period").distinct()[:20]
    )
    changed = calls_rate_many(keys=sample).changed
    return total, unrated, changed


def main() -> int:
    _fresh_database()
    common.setup_django()
    numbers = _setup()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "cdrs-2026-05.csv"
        t0 = time.perf_counter()
        _write_calls(path, numbers)
        common.report("calls generated", f"{CALLS:,} in {time.perf_counter() - t0:.1f}")
        common.report("file size", f"{path.stat().st_size / 1e6:.1f}", "MB")
        floor = _floor(path)
        common.report("(a) COPY into a bare table (PK call_id)", f"{floor:.2f}", "s")
        elapsed, peak, summary, phases = _import(path)
        common.report("(b) import_cdrs incl. rating", f"{elapsed:.2f}", "s")
        print(f"    {summary[:300]}")
        for phase in phases:
            print(f"    {phase}")
    insert_s, commit_s = _insert_floor()
    common.report(
        "(c) INSERT of the rows alone into the call table",
        f"{insert_s + commit_s:.2f}",
        f"s (insert {insert_s:.2f} + commit/FK checks {commit_s:.2f};"
        f" {(insert_s + commit_s) / floor:.1f} × (a))",
    )
    total, unrated, changed = _verify()
    ratio = elapsed / floor
    common.report("calls stored / unrated", f"{total:,} / {unrated:,}")
    common.report("re-rating 20 months changes", changed)
    common.report("ratio (b)/(a)", f"{ratio:.2f}", f"(target ≤ {TARGET_RATIO})")
    common.report("peak RSS of import_cdrs", f"{peak:.0f}", f"MB (< {TARGET_RSS_MB})")
    common.report("machine load (1/5/15 min)", Path("/proc/loadavg").read_text()[:15])
    ok = (
        ratio <= TARGET_RATIO
        and peak < TARGET_RSS_MB
        and total == CALLS
        and unrated == 0
        and changed == 0
    )
    print("PASS" if ok else "FAIL: a target was missed", flush=True)
    return 0 if ok else 1
