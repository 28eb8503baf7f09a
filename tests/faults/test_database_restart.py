"""PostgreSQL restarted while a worker runs: tasks recover.

Restarting the real cluster would break every other test running in
parallel, so a restart is simulated the way a worker sees it: the server
terminates every connection to the test database but this test's own.

- Between tasks a worker holds no connection: Celery's Django fix-up closes
  them before and after every task (whatever CONN_MAX_AGE says), so the next
  task simply connects again.
- During a task the task fails. Its work was one transaction, rolled back
  with the connection, and is resumed: a CDR import stays "running" with no
  worker holding its lock, and the sweeper runs it again.
"""

import datetime as dt

import pytest
from django.core.files import File
from django.db import connection
from django.utils import timezone

from billing.models import CallRecord, CdrImport, Invoice
from billing.services.cdr_import import cdr_import_busy, cdr_import_create
from billing.tasks.imports import cdr_import_run_task
from billing.tasks.invoices import close_company_task
from ops.sweep import sweep_run
from tests.conftest import wait_for
from tests.factories import (
    AgentFactory,
    AgentStaffFactory,
    CompanyFactory,
    SubscriptionFactory,
)
from tests.faults.data import MARCH, companies_with_calls, write_cdr_file
from tests.faults.test_worker_killed import _inserting_calls

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]


def terminate_other_connections() -> int:
    with connection.cursor() as cur:
        cur.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        return cur.fetchone()[0]


def test_the_next_task_succeeds_after_the_database_dropped_connections(
    start_worker,
):
    # given two companies to close and a worker that has closed the first
    agent = AgentFactory()
    first, second = (CompanyFactory(agent=agent) for _ in range(2))
    for company in (first, second):
        SubscriptionFactory(company=company, activated_on=MARCH)
    worker = start_worker()
    close_company_task.delay(first.pk, MARCH.isoformat())
    wait_for(lambda: Invoice.objects.filter(company=first).exists(), timeout=30)
    # (it keeps no connection between tasks)
    wait_for(lambda: not worker.backend_pids(), timeout=10)

    # when the server terminates every other connection to the database
    terminate_other_connections()

    # then the next task succeeds
    close_company_task.delay(second.pk, MARCH.isoformat())
    wait_for(lambda: Invoice.objects.filter(company=second).exists(), timeout=30)
    assert "succeeded" in worker.output().rsplit("billing.close_company", 1)[1]


def test_an_import_cut_off_by_the_database_is_resumed_by_the_sweeper(
    start_worker, settings, tmp_path
):
    # given a 20,000-row upload being imported by a worker
    agent = AgentFactory()
    companies = companies_with_calls(agent, 20, calls=False)
    numbers = [c.subscriptions.get().number.number for c in companies]
    path = tmp_path / "cdrs.csv"
    valid = write_cdr_file(path, numbers, 20_000, bad_every=500)
    with open(path, "rb") as handle:
        imp = cdr_import_create(
            source=CdrImport.Source.ADMIN,
            agent=agent,
            created_by=AgentStaffFactory(agent=agent),
            upload=File(handle, name="cdrs.csv"),
        )
    worker = start_worker(MEDIA_ROOT=str(settings.MEDIA_ROOT))
    cdr_import_run_task.delay(imp.pk)

    # when the database drops the worker's connection while the calls are
    # inserted
    wait_for(_inserting_calls, timeout=60, interval=0.02)
    assert terminate_other_connections() >= 1

    # then the task fails, nothing is stored and no worker holds the import
    wait_for(lambda: " raised unexpected: OperationalError" in worker.output())
    assert not CallRecord.objects.exists()
    assert CdrImport.objects.get(pk=imp.pk).status == CdrImport.Status.RUNNING
    assert not cdr_import_busy(import_id=imp.pk)
    # ... and the sweeper runs it again to the end, each row once
    stale = dt.timedelta(minutes=settings.HOTLINE_SWEEP_STALE_MINUTES + 1)
    assert sweep_run(now=timezone.now() + stale)["cdr_imports"] == 1
    wait_for(
        lambda: CdrImport.objects.get(pk=imp.pk).status == CdrImport.Status.DONE,
        timeout=60,
    )
    imp.refresh_from_db()
    assert (imp.imported, imp.rejected, imp.duplicates) == (len(valid), 40, 0)
    assert CallRecord.objects.count() == len(valid)
