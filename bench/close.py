"""The monthly close at scale: 10,000 companies × 1 number × 100 calls.

``python -m bench close`` (database ``hotline400_bench_close``; the data is
built once and reused, the calls are reset to "not rated" before each run).
The close runs exactly as in production: ``close_run_start`` fans out one
``billing.close_company`` task per company to real Celery worker processes
(prefork) over Redis; each task rates the company's pending calls and builds
its draft invoice. Two runs: first the worst case, every call still unrated
(the close rates them all); then the close as the issue states it, building
drafts "from the catalog, subscriptions and rated calls" — in production the
calls are rated as they arrive (import_cdrs, the push API). The target (under
60 s) is judged on the second; both are printed. It also counts the queries
of one company's close for a company with 10 calls and one with 1,000 calls:
the count must be the same (constant per company).

Environment: BENCH_COMPANIES (10000), BENCH_CALLS (100), BENCH_CONCURRENCY
(worker processes, default 2 = this machine's cores).
"""

import datetime as dt
import io
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from zoneinfo import ZoneInfo

os.environ.setdefault(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/hotline400_bench_close"
)
QUEUE = "bench-close"
os.environ["CELERY_TASK_ALWAYS_EAGER"] = "false"
os.environ["CELERY_TASK_DEFAULT_QUEUE"] = QUEUE

from bench import common  # noqa: E402

COMPANIES = int(os.environ.get("BENCH_COMPANIES", "10000"))
CALLS = int(os.environ.get("BENCH_CALLS", "100"))
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "2"))
TARGET_SECONDS = 60
MARCH = dt.date(2026, 3, 1)
SH = ZoneInfo("Asia/Shanghai")
AGENT_NAME = "bench-close"
PROBE_AGENT = "bench-close-probe"


def _copy(table: str, columns: list[str], rows) -> None:
    from django.db import connection

    buf = io.StringIO()
    for row in rows:
        buf.write("\t".join("\\N" if v is None else str(v) for v in row) + "\n")
    buf.seek(0)
    sql = f"COPY {table} ({', '.join(columns)}) FROM STDIN"
    with connection.cursor() as cur, cur.copy(sql) as copy:
        while chunk := buf.read(1 << 20):
            copy.write(chunk)


def _calls_rows(subs, calls_per_sub, rng, prefix):
    """Realistic calls: business hours mostly, some evenings, misses, outbound."""
    for sub_id, company_id, number_id in subs:
        for i in range(calls_per_sub):
            day = rng.randint(1, 31)
            hour = rng.choice([9, 10, 11, 14, 15, 16, 17, 19, 21, 8, 13])
            start = dt.datetime(2026, 3, day, hour, rng.randint(0, 59), tzinfo=SH)
            outbound = rng.random() < 0.1
            answered = outbound or rng.random() < 0.85
            yield (
                f"{prefix}-{sub_id}-{i}",
                company_id,
                sub_id,
                number_id,
                f"1380013{rng.randint(0, 9999):04d}",
                "广东深圳",
                "",
                start.isoformat(),
                "2026-03-01",
                rng.randint(5, 900) if answered else 0,
                "outbound" if outbound else "inbound",
                "answered" if answered else "missed",
                "",
                0,
                0,
                0,
                "0",
                "0",
                "now",
            )


CALL_COLUMNS = [
    "call_id",
    "company_id",
    "subscription_id",
    "number_id",
    "caller_number",
    "caller_area",
    "answer_number",
    "start_time",
    "period",
    "duration_seconds",
    "direction",
    "status",
    "band",
    "billable_minutes",
    "pool_minutes",
    "charged_minutes",
    "rate",
    "amount",
    "created_at",
]


def _companies(agent, n, calls_per_company, prefix, first_number):
    """n companies, one subscribed number each (¥199 plan), their calls (COPY)."""
    from accounts.models import Company
    from billing.models import CallRecord
    from plans.models import PhoneNumber, Subscription, SubscriptionPlanPeriod
    from tests.factories import PlanFactory, make_uscc

    plan = PlanFactory(code="bench-close-199")
    base = Company.objects.count()
    companies = Company.objects.bulk_create(
        [
            Company(
                agent=agent,
                name=f"{prefix}企业{i:05d}有限公司",
                uscc=make_uscc(3_000_000 + base + i),
                address="广东省深圳市南山区科技园",
                billing_email=f"{prefix}{i}@bench.example.cn",
                contact_phone="+8613800138000",
                verification_status="approved",
            )
            for i in range(n)
        ],
        batch_size=2000,
    )
    numbers = PhoneNumber.objects.bulk_create(
        [
            PhoneNumber(
                number=f"4007{first_number + i:06d}",
                carrier="telecom",
                status="subscribed",
            )
            for i in range(n)
        ],
        batch_size=2000,
    )
    subs = Subscription.objects.bulk_create(
        [
            Subscription(
                company=c, number=num, status="active", activated_on=dt.date(2026, 1, 1)
            )
            for c, num in zip(companies, numbers, strict=True)
        ],
        batch_size=2000,
    )
    SubscriptionPlanPeriod.objects.bulk_create(
        [
            SubscriptionPlanPeriod(subscription=s, plan=plan, start_date=s.activated_on)
            for s in subs
        ],
        batch_size=2000,
    )
    rng = random.Random(prefix)
    keys = [(s.pk, s.company_id, s.number_id) for s in subs]
    _copy(
        CallRecord._meta.db_table,
        CALL_COLUMNS,
        _calls_rows(keys, calls_per_company, rng, prefix),
    )
    return companies


def _ensure_data():
    from accounts.models import Agent
    from tests.factories import AgentFactory, ensure_catalog_basics

    ensure_catalog_basics()
    agent = Agent.objects.filter(name=AGENT_NAME).first()
    if agent is None or agent.companies.count() != COMPANIES:
        if agent is not None:
            raise SystemExit(
                "the bench database holds another size; drop hotline400_bench_close"
            )
        agent = AgentFactory(name=AGENT_NAME, auto_issue_invoices=False)
        with common.timed() as t:
            _companies(agent, COMPANIES, CALLS, "b", 0)
        common.report("built companies and calls", f"{t():.1f}", "s")
    return agent


def _reset(agent, *, unrate: bool):
    """Back to "no invoice" (drafts only here); with ``unrate``, also to
    "calls arrived, nothing rated"."""
    from django.db import connection

    from billing.models import CloseRun, Invoice

    CloseRun.objects.filter(agent=agent).delete()
    Invoice.objects.filter(company__agent=agent).delete()
    if unrate:
        with connection.cursor() as cur:
            cur.execute(
                "UPDATE billing_callrecord SET rated_at = NULL, band = '',"
                " billable_minutes = 0, pool_minutes = 0, charged_minutes = 0,"
                " rate = 0, amount = 0 WHERE company_id IN"
                " (SELECT id FROM accounts_company WHERE agent_id = %s)",
                [agent.pk],
            )
    with connection.cursor() as cur:
        cur.execute("ANALYZE")


def _close(agent) -> tuple[float, object]:
    """Run the close on the worker; the seconds it took and the run."""
    from billing.models import CloseRun
    from billing.services.invoices import close_run_start

    with common.timed() as t:
        run = close_run_start(agent=agent, period=MARCH, issue=False)
        while True:
            run.refresh_from_db()
            if run.status == CloseRun.Status.DONE:
                break
            if t() > 20 * TARGET_SECONDS:
                raise SystemExit("the close did not finish")
            time.sleep(0.2)
    return t(), run


def _start_worker():
    from django.conf import settings

    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        # Workers keep their database connection between tasks, as in
        # production (DATABASE_CONN_MAX_AGE).
        "DATABASE_URL": os.environ["BENCH_DATABASE_URL"] + "?conn_max_age=600",
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "CELERY_TASK_DEFAULT_QUEUE": QUEUE,
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "REDIS_URL": settings.REDIS_URL,
        "LOG_LEVEL": "WARNING",
    }
    log = Path(tempfile.gettempdir()) / f"bench-close-worker-{os.getpid()}.log"
    handle = open(log, "wb")  # noqa: SIM115 - closed by _stop_worker
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--pool=prefork",
            f"--concurrency={CONCURRENCY}",
            "--loglevel=INFO",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "-Q",
            QUEUE,
            "-n",
            f"{QUEUE}-{os.getpid()}@%h",
        ],
        cwd=Path(__file__).resolve().parent.parent,
        env=env,
        stdout=handle,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while b" ready." not in log.read_bytes():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise SystemExit("worker did not start:\n" + log.read_text())
        time.sleep(0.1)
    proc.handle = handle
    proc.log = log
    return proc


def _stop_worker(proc) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
    proc.handle.close()


def _purge_queue() -> None:
    from config.celery_app import app

    with app.connection_for_write() as conn:
        conn.default_channel.queue_purge(QUEUE)


def _queries_per_company() -> tuple[int, int]:
    """Queries of one company's close with 10 calls, and with 1,000 calls."""
    from django.db import connection, transaction
    from django.test.utils import CaptureQueriesContext

    from billing.services.invoices import close_company
    from tests.factories import AgentFactory

    counts = []
    with transaction.atomic():
        probe = AgentFactory(name=f"{PROBE_AGENT}-{os.getpid()}")
        small = _companies(probe, 1, 10, f"p10-{os.getpid()}", 900_000)[0]
        big = _companies(probe, 1, 1000, f"p1000-{os.getpid()}", 900_001)[0]
        for company in (small, big):
            with CaptureQueriesContext(connection) as ctx:
                close_company(company=company, period=MARCH, issue=False)
            counts.append(len(ctx.captured_queries))
        transaction.set_rollback(True)  # leave the bench data as it was
    return counts[0], counts[1]


def main() -> int:
    common.setup_django()
    from billing.models import CloseRunItem, Invoice

    agent = _ensure_data()
    _purge_queue()
    common.report("companies", f"{COMPANIES:,}")
    common.report("calls", f"{COMPANIES * CALLS:,}")
    common.report("worker processes", CONCURRENCY)

    worker = _start_worker()
    try:
        _reset(agent, unrate=True)
        worst, _run = _close(agent)
        _reset(agent, unrate=False)
        elapsed, run = _close(agent)
    finally:
        _stop_worker(worker)

    invoices = Invoice.objects.filter(company__agent=agent).count()
    failed = run.items.filter(status=CloseRunItem.Status.FAILED).count()
    common.report(
        "close, calls unrated (rate + draft; worst case)", f"{worst:.1f}", "s"
    )
    common.report("close, calls rated on arrival (draft)", f"{elapsed:.1f}", "s")
    common.report("companies per second", f"{COMPANIES / elapsed:,.0f}")
    common.report("invoices built", f"{invoices:,}")
    common.report("companies failed", failed)

    small, big = _queries_per_company()
    common.report("queries, one company with 10 calls", small)
    common.report("queries, one company with 1,000 calls", big)
    ok = elapsed < TARGET_SECONDS and invoices == COMPANIES and not failed
    common.report(
        "target", f"< {TARGET_SECONDS} s, constant queries", "met" if ok else "MISSED"
    )
    return 0 if ok and small == big else 1
