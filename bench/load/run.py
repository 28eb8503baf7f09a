"""Load test: 50 users on gunicorn with the production settings, while a
Celery worker imports a CDR file.

    .venv/bin/python -m bench load        (or: .venv/bin/python -m bench.load.run)

1. Prepares a PostgreSQL database of its own (``hotline400_load``, override
   with LOAD_DATABASE_URL): the example catalog and 10,000 numbers in stock,
   10 companies with three 400 numbers each, last month's calls imported and
   invoiced (issued), this month's calls so far, an API key per company.
   Data are built once and reused; API keys are made fresh for each run.
2. Starts, on loopback only: an SMTP sink, gunicorn (config.settings.production,
   SSL redirect off) and a Celery worker (Redis db LOAD_REDIS_DB, default 9).
3. Runs locust headless for 60 s, 50 users spawned 10/s (bench/load/
   locustfile.py): login form with CSRF, bill page, calls drill-down, number
   search, month-to-date and API reads. Meanwhile the worker imports a file
   of 50,000 calls.
4. Prints requests, failures and p50/p95/p99 per endpoint and the import's
   figures; exits 1 on any error, a p95 of 300 ms or more on a read (log-in
   excluded: it runs once per user while they spawn), or an import
   that did not finish cleanly.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import random
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
VAR = ROOT / "var" / "load"
DATABASE_URL = os.environ.get(
    "LOAD_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/hotline400_load"
)
REDIS_URL = f"redis://127.0.0.1:6379/{os.environ.get('LOAD_REDIS_DB', '9')}"
PASSWORD = "load test passphrase 400"  # noqa: S105 - a throwaway bench user
COMPANIES = 10
NUMBERS_PER_COMPANY = 3
CALLS_LAST_MONTH = 60_000
CALLS_THIS_MONTH = 30_000
CALLS_DURING_RUN = 50_000
USERS, SPAWN_RATE, RUN_TIME = 50, 10, "60s"
READ_P95_TARGET_MS = 300
# The log-in steps run once per user while the users spawn (password hashing
# on purpose costs CPU); the target is on the reads the issue names: the bill
# page, the calls drill-down, number search, month-to-date and API reads.
NOT_JUDGED = {"login", "login form"}
AREAS = ["广东深圳", "北京", "上海", "浙江杭州", "江苏南京", "四川成都", "湖北武汉"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_env(smtp_port: int) -> dict:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.production",
        "DJANGO_SECRET_KEY": "load-" + secrets.token_urlsafe(48),
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "DJANGO_SECURE_SSL_REDIRECT": "false",
        "DATABASE_URL": DATABASE_URL,
        "REDIS_URL": REDIS_URL,
        "CELERY_BROKER_URL": REDIS_URL,
        "EMAIL_URL": f"smtp://127.0.0.1:{smtp_port}",
        "HOTLINE_VAR_DIR": str(VAR),
        "HOTLINE_BASE_URL": "http://127.0.0.1",
    }


# --- data -------------------------------------------------------------------------


def _create_database() -> None:
    import psycopg

    name = DATABASE_URL.rsplit("/", 1)[1]
    admin = DATABASE_URL.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        if not conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [name]
        ).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def _write_calls(path: Path, numbers: list[str], n: int, start, end, prefix: str):
    rng = random.Random(prefix)
    span = int((end - start).total_seconds())
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
        for i in range(n):
            when = start + dt.timedelta(seconds=rng.randrange(max(span, 1)))
            roll = rng.random()
            missed = roll < 0.1
            writer.writerow(
                [
                    f"{prefix}-{i:08d}",
                    rng.choice(numbers),
                    f"1{rng.randrange(30, 99)}{rng.randrange(10**8):08d}",
                    rng.choice(AREAS),
                    "+8613900000000",
                    f"{when:%Y-%m-%d %H:%M:%S}",
                    0 if missed else int(rng.lognormvariate(4.4, 0.9)),
                    "outbound" if roll > 0.95 else "inbound",
                    "missed" if missed else "answered",
                ]
            )


class _Out:
    def write(self, text):
        print(text, flush=True)


def prepare(env: dict) -> dict:
    """Build (once) the data and return the plan the locust users read."""
    os.environ.update(env)
    _create_database()
    import django

    django.setup()
    from django.core.management import call_command
    from django.utils import timezone

    call_command("migrate", verbosity=0)
    call_command("collectstatic", interactive=False, verbosity=0)

    from accounts.models import Agent, Company, User
    from billing.models import Invoice
    from billing.selectors.bills import is_usage_line
    from billing.services.cdr_import import cdr_import_file
    from billing.services.company_api_keys import api_key_create
    from billing.services.invoices import invoice_generate, invoice_issue
    from plans import demo
    from plans.models import PhoneNumber, Plan, Subscription, SubscriptionPlanPeriod
    from tests.factories import make_uscc

    now = timezone.localtime()
    this_month = now.date().replace(day=1)
    last_month = (this_month - dt.timedelta(days=1)).replace(day=1)
    tz = now.tzinfo
    agent, _ = Agent.objects.get_or_create(name="load-agent")
    built = Company.objects.filter(agent=agent).count() == COMPANIES and (
        Invoice.objects.filter(
            company__agent=agent, period=last_month, status="issued"
        ).count()
        == COMPANIES
    )
    numbers_by_company: dict[int, list[str]] = {}
    if not built:
        print("preparing data (once) …", flush=True)
        if PhoneNumber.objects.filter(status="available").count() < 10_000:
            demo.seed(stdout=_Out())
        plan = Plan.objects.filter(term_months=1, is_active=True).order_by("price")[0]
        for i in range(COMPANIES):
            company, _ = Company.objects.get_or_create(
                agent=agent,
                name=f"负载测试企业{i:02d}有限公司",
                defaults=dict(
                    uscc=make_uscc(7_700_000 + i),
                    address="广东省深圳市南山区",
                    billing_email=f"billing{i}@load.example.cn",
                    contact_phone="+8613800138000",
                    verification_status="approved",
                ),
            )
            if not User.objects.filter(email=f"owner{i}@load.example.cn").exists():
                User.objects.create_user(
                    f"owner{i}@load.example.cn",
                    PASSWORD,
                    company=company,
                    role="owner",
                    full_name=f"负载{i}",
                )
            for j in range(NUMBERS_PER_COMPANY):
                number, created = PhoneNumber.objects.get_or_create(
                    number=f"4009{i:02d}{j:04d}",
                    defaults={"carrier": "telecom", "status": "subscribed"},
                )
                if created:
                    sub = Subscription.objects.create(
                        company=company,
                        number=number,
                        status="active",
                        activated_on=dt.date(2026, 1, 1),
                    )
                    SubscriptionPlanPeriod.objects.create(
                        subscription=sub, plan=plan, start_date=dt.date(2026, 1, 1)
                    )
        all_numbers = [
            f"4009{i:02d}{j:04d}"
            for i in range(COMPANIES)
            for j in range(NUMBERS_PER_COMPANY)
        ]
        VAR.mkdir(parents=True, exist_ok=True)
        last = VAR / "calls-last-month.csv"
        start = dt.datetime.combine(last_month, dt.time(), tzinfo=tz)
        month_end = dt.datetime.combine(this_month, dt.time(), tzinfo=tz)
        _write_calls(
            last,
            all_numbers,
            CALLS_LAST_MONTH,
            start,
            month_end - dt.timedelta(minutes=30),
            f"L{last_month:%Y%m}",
        )
        cur = VAR / "calls-this-month.csv"
        _write_calls(
            cur,
            all_numbers,
            CALLS_THIS_MONTH,
            dt.datetime.combine(this_month, dt.time(), tzinfo=tz),
            now - dt.timedelta(hours=1),
            f"C{this_month:%Y%m}",
        )
        for path in (last, cur):
            imp = cdr_import_file(path=path, agent=agent)
            print(f"  imported {path.name}: {imp.imported} calls", flush=True)
        for company in Company.objects.filter(agent=agent):
            draft = invoice_generate(company=company, period=last_month)
            invoice_issue(invoice=draft, force=True)
    companies = []
    for company in Company.objects.filter(agent=agent).order_by("name"):
        invoice = Invoice.objects.get(company=company, period=last_month)
        lines = [line.pk for line in invoice.lines.all() if is_usage_line(line)]
        _key, raw = api_key_create(company=company, name="load test")
        owner = User.objects.filter(company=company, role="owner").first()
        numbers_by_company[company.pk] = list(
            Subscription.objects.filter(company=company).values_list(
                "number__number", flat=True
            )
        )
        companies.append(
            {
                "email": owner.email,
                "invoice": invoice.pk,
                "usage_lines": lines,
                "api_key": raw,
            }
        )
    return {
        "password": PASSWORD,
        "companies": companies,
        "numbers": [n for ns in numbers_by_company.values() for n in ns],
        "this_month": this_month.isoformat(),
    }


# --- processes --------------------------------------------------------------------


def _start(cmd: list[str], env: dict, log: Path) -> subprocess.Popen:
    handle = open(log, "wb")  # noqa: SIM115 - kept open for the process' life
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=handle, stderr=handle)


def _wait_http(url: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            urllib.request.urlopen(url, timeout=2)  # noqa: S310 - loopback
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer")


def _wait_log(log: Path, text: bytes, proc: subprocess.Popen, timeout=60) -> None:
    deadline = time.monotonic() + timeout
    while text not in log.read_bytes():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{log.name}:\n" + log.read_text(errors="replace"))
        time.sleep(0.2)


def _stop(proc: subprocess.Popen | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


def _enqueue_import(plan: dict):
    """Queue the in-run CDR import for the worker; returns the import."""
    from django.core.files import File
    from django.utils import timezone

    from accounts.models import Agent
    from billing.models import CdrImport
    from billing.services.cdr_import import cdr_import_create
    from billing.tasks.imports import cdr_import_run_task

    now = timezone.localtime()
    month = dt.date.fromisoformat(plan["this_month"])
    path = VAR / "calls-during-run.csv"
    _write_calls(
        path,
        plan["numbers"],
        CALLS_DURING_RUN,
        dt.datetime.combine(month, dt.time(), tzinfo=now.tzinfo),
        now - dt.timedelta(minutes=5),
        f"R{int(time.time())}",
    )
    with open(path, "rb") as handle:
        imp = cdr_import_create(
            source=CdrImport.Source.COMMAND,
            agent=Agent.objects.get(name="load-agent"),
            upload=File(handle, name=path.name),
        )
    cdr_import_run_task.delay(imp.pk)
    return imp


# --- figures ----------------------------------------------------------------------


def _figures(stats_csv: Path) -> tuple[list[dict], int, int]:
    rows = list(csv.DictReader(open(stats_csv, encoding="utf-8")))  # noqa: SIM115
    endpoints = [r for r in rows if r["Name"] != "Aggregated"]
    total = next(r for r in rows if r["Name"] == "Aggregated")
    return endpoints, int(total["Request Count"]), int(total["Failure Count"])


def main() -> int:
    from aiosmtpd.controller import Controller

    class Sink:
        count = 0

        async def handle_DATA(self, server, session, envelope):
            Sink.count += 1
            return "250 OK"

    VAR.mkdir(parents=True, exist_ok=True)
    load_start = os.getloadavg()[0]
    smtp_port = free_port()
    smtp = Controller(Sink(), hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    env = server_env(smtp_port)
    plan = prepare(env)
    plan_file = VAR / "plan.json"
    plan_file.write_text(json.dumps(plan), encoding="utf-8")
    port = free_port()
    web = worker = None
    try:
        web = _start(
            [
                str(VENV_BIN / "gunicorn"),
                "config.wsgi:application",
                "--bind",
                f"127.0.0.1:{port}",
                "--workers",
                "4",
                "--worker-class",
                "gthread",
                "--threads",
                "4",
                "--log-level",
                "warning",
            ],
            env,
            VAR / "gunicorn.log",
        )
        worker = _start(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "--concurrency=2",
                "--loglevel=INFO",
                "--without-gossip",
                "--without-mingle",
                "-n",
                f"load-{os.getpid()}@%h",
            ],
            env,
            VAR / "worker.log",
        )
        _wait_http(f"http://127.0.0.1:{port}/accounts/login/", web)
        _wait_log(VAR / "worker.log", b" ready.", worker)
        locust = subprocess.Popen(
            [
                str(VENV_BIN / "locust"),
                "-f",
                str(ROOT / "bench" / "load" / "locustfile.py"),
                "--headless",
                "-u",
                str(USERS),
                "-r",
                str(SPAWN_RATE),
                "--run-time",
                RUN_TIME,
                "--stop-timeout",
                "10",
                "--host",
                f"http://127.0.0.1:{port}",
                "--csv",
                str(VAR / "locust"),
                "--only-summary",
                # Steady state: the figures start once every user is spawned
                # (the logins' PBKDF2 burst is the spawn phase).
                "--reset-stats",
                "--loglevel",
                "WARNING",
            ],
            cwd=ROOT,
            env={**os.environ, "LOAD_PLAN": str(plan_file)},
        )
        time.sleep(5)  # the users are spawning: import while they work
        started = time.monotonic()
        imp = _enqueue_import(plan)
        locust.wait(timeout=180)
        deadline = time.monotonic() + 180
        while True:
            imp.refresh_from_db()
            if imp.status not in ("queued", "running") or time.monotonic() > deadline:
                break
            time.sleep(1)
        import_seconds = time.monotonic() - started
    finally:
        _stop(web)
        _stop(worker)
        smtp.stop()

    endpoints, requests, failures = _figures(VAR / "locust_stats.csv")
    print(f"\n{'endpoint':<22}{'requests':>9}{'fail':>6}{'p50':>7}{'p95':>7}{'p99':>7}")
    slow = []
    for row in sorted(endpoints, key=lambda r: r["Name"]):
        p95 = float(row["95%"] or 0)
        print(
            f"{row['Name']:<22}{row['Request Count']:>9}{row['Failure Count']:>6}"
            f"{row['50%']:>7}{row['95%']:>7}{row['99%']:>7}"
        )
        if row["Name"] not in NOT_JUDGED and p95 >= READ_P95_TARGET_MS:
            slow.append(f"{row['Name']} p95 {p95:.0f} ms")
    print(f"\ntotal requests {requests}, failures {failures} (ms; {USERS} users)")
    load_end, cores = os.getloadavg()[0], os.cpu_count() or 0
    print(f"load average (1 min): {load_start:.1f} at start, {load_end:.1f} at end")
    print(f"cores: {cores}")
    print(
        f"CDR import during the run: {imp.status}, {imp.imported} imported, "
        f"{imp.duplicates} duplicates, {imp.rejected} rejected, "
        f"done {import_seconds:.0f} s after it was queued"
    )
    ok = True
    if failures:
        ok = False
        print(f"FAIL: {failures} failed requests (see {VAR}/locust_failures.csv)")
    if slow:
        ok = False
        print(f"FAIL: read p95 at or over {READ_P95_TARGET_MS} ms: " + ", ".join(slow))
    if imp.status != "done" or imp.imported + imp.duplicates != CALLS_DURING_RUN:
        ok = False
        print("FAIL: the CDR import did not finish cleanly")
    print("OK" if ok else "TARGET MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
