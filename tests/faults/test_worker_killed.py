"""A worker killed (SIGKILL) in the middle of a monthly close or a big CDR
import: another worker finishes the work from the redelivered task, and the
end state is complete with nothing doubled.

The worker dies as a machine would: the whole process group at once, no
clean-up, no acknowledgement. The tasks are acknowledged late, so the broker
delivers the lost task again once its visibility timeout has passed (a few
seconds here, see conftest.py).
"""

from collections import Counter

import pytest
from django.core.files import File
from django.db import connection, transaction

from billing.models import (
    CallRecord,
    CdrImport,
    CdrImportError,
    CloseRun,
    CloseRunItem,
    Invoice,
    InvoiceEmail,
    InvoiceLine,
)
from billing.services.cdr_import import CALL_INSERT_LOCK, cdr_import_create
from billing.services.invoices import (
    close_run_start,
    invoice_compute,
    rate_pending_many,
)
from billing.services.rating import calls_rate_many
from billing.tasks.imports import cdr_import_run_task
from tests.conftest import wait_for
from tests.factories import AgentFactory, AgentStaffFactory
from tests.faults.data import MARCH, companies_with_calls, write_cdr_file

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

# Small batches keep the test short (each invoice email renders a PDF) and
# still give the run four tasks, so the kill lands with two still to do.
BATCH = 10
COMPANIES = 4 * BATCH
ROWS = 50_000
BAD_EVERY = 1_000  # one row in a thousand has an unknown 400 number


def _line_rows(lines):
    return [
        (ln.kind, ln.description[:300], ln.quantity, ln.unit_price, ln.amount)
        for ln in lines
    ]


def expected_invoices(companies):
    """What a clean close bills: the calls rated and priced, then rolled back."""
    with transaction.atomic():
        rate_pending_many(company_ids=[c.pk for c in companies], period=MARCH)
        expected = {}
        for company in companies:
            computed = invoice_compute(company=company, period=MARCH)
            expected[company.pk] = (computed.total, _line_rows(computed.lines))
        transaction.set_rollback(True)
    return expected


def test_a_close_survives_a_worker_killed_mid_run(start_worker, smtp_server):
    # given companies with unrated calls, an auto-issuing agent, and what a
    # clean close would bill each of them
    agent = AgentFactory(auto_issue_invoices=True)
    companies = companies_with_calls(agent, COMPANIES)
    expected = expected_invoices(companies)
    assert not CallRecord.objects.filter(rated_at__isnull=False).exists()
    first = start_worker(HOTLINE_CLOSE_BATCH=str(BATCH))

    # when the close runs and its worker is killed once a batch is closed
    # and at least two are still to do (so no invoice email has started:
    # they are queued behind the batches)
    run = close_run_start(agent=agent, period=MARCH, issue=True)

    def done():
        return run.items.exclude(status=CloseRunItem.Status.PENDING).count()

    wait_for(lambda: done() >= 1, timeout=60, interval=0.02)
    first.kill()
    assert 0 < done() <= COMPANIES - 2 * BATCH
    # ... and another worker is started
    start_worker(concurrency=2, HOTLINE_CLOSE_BATCH=str(BATCH))

    # then the run finishes and every invoice is mailed (the lost batch comes
    # back once its visibility timeout has passed; a loaded CI machine needs
    # more than the usual 15 s)
    wait_for(lambda: CloseRun.objects.get(pk=run.pk).status == "done", timeout=150)
    wait_for(
        lambda: InvoiceEmail.objects.filter(status="sent").count() == COMPANIES,
        timeout=60,
    )
    # one issued invoice per company, billed as the clean close bills
    invoices = Invoice.objects.filter(company__agent=agent)
    assert set(invoices.values_list("status", flat=True)) == {"issued"}
    got = {
        inv.company_id: (
            inv.total,
            _line_rows(InvoiceLine.objects.filter(invoice=inv).order_by("position")),
        )
        for inv in invoices
    }
    assert got == expected
    assert set(run.items.values_list("status", flat=True)) == {"issued"}
    # gap-free numbers: the killed batch's numbers were rolled back with it
    numbers = list(invoices.values_list("number", flat=True))
    sequence = sorted(int(n.rsplit("-", 1)[1]) for n in numbers)
    assert sequence == list(range(sequence[0], sequence[0] + COMPANIES))
    # every call billed, once
    assert not CallRecord.objects.filter(invoice__isnull=True).exists()
    # each invoice emailed exactly once
    assert Counter(InvoiceEmail.objects.values_list("invoice_id", flat=True)) == (
        Counter(invoices.values_list("pk", flat=True))
    )
    wait_for(lambda: len(smtp_server.messages) >= COMPANIES, timeout=10)
    per_invoice = Counter(m["X-Hotline400-Invoice"] for _e, m in smtp_server.messages)
    assert per_invoice == Counter(numbers)


def test_a_pool_process_killed_mid_batch_is_redone_by_its_worker(
    start_worker, fault_broker
):
    # given companies to close and a worker whose broker would redeliver a
    # lost task only after two hours: only the worker itself can put it back
    fault_broker.transport_options["visibility_timeout"] = 2 * 60 * 60
    agent = AgentFactory()
    companies = companies_with_calls(agent, COMPANIES)
    expected = expected_invoices(companies)
    worker = start_worker(HOTLINE_CLOSE_BATCH=str(BATCH))

    # when the pool process running a batch is killed (its worker survives)
    run = close_run_start(agent=agent, period=MARCH, issue=False)

    def done():
        return run.items.exclude(status=CloseRunItem.Status.PENDING).count()

    # (mid-batch: a batch commits as a whole, so between two batches there is
    # no task to lose)
    wait_for(
        lambda: done() >= 1 and _in_transaction(worker), timeout=60, interval=0.005
    )
    assert worker.kill_pool_processes()
    assert 0 < done() <= COMPANIES - 2 * BATCH

    # then the worker rejects the lost task back to the queue (reject on
    # worker lost), runs it again and the run ends with one draft each
    wait_for(lambda: CloseRun.objects.get(pk=run.pk).status == "done", timeout=60)
    assert "WorkerLostError" in worker.output()
    invoices = Invoice.objects.filter(company__agent=agent)
    got = {
        inv.company_id: (
            inv.total,
            _line_rows(InvoiceLine.objects.filter(invoice=inv).order_by("position")),
        )
        for inv in invoices
    }
    assert got == expected
    assert set(run.items.values_list("status", flat=True)) == {"draft"}


def _in_transaction(worker) -> bool:
    """Whether one of the worker's database sessions is inside a transaction."""
    with connection.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE application_name = %s AND xact_start IS NOT NULL",
            [worker.app_name],
        )
        return cur.fetchone()[0] > 0


def _inserting_calls() -> bool:
    """Whether an import holds the call-insert lock (its phase 2 transaction)."""
    with connection.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a USING (pid)"
            " WHERE l.locktype = 'advisory' AND l.granted AND l.classid = 0"
            " AND l.objid = %s AND l.objsubid = 1 AND a.datname = current_database()",
            [CALL_INSERT_LOCK],
        )
        return cur.fetchone()[0] > 0


def _ratings():
    return dict(
        (row[0], row[1:])
        for row in CallRecord.objects.values_list(
            "call_id",
            "band",
            "billable_minutes",
            "pool_minutes",
            "charged_minutes",
            "rate",
            "amount",
        )
    )


def test_a_cdr_import_survives_a_worker_killed_mid_import(
    start_worker, settings, tmp_path
):
    # given 50 subscribed numbers and a 50,000-row carrier file uploaded in
    # the back office (50 rows with an unknown number)
    agent = AgentFactory()
    staff = AgentStaffFactory(agent=agent)
    companies = companies_with_calls(agent, 50, calls=False)
    numbers = [
        sub.number.number
        for company in companies
        for sub in company.subscriptions.select_related("number")
    ]
    path = tmp_path / "cdrs.csv"
    valid = write_cdr_file(path, numbers, ROWS, bad_every=BAD_EVERY)
    with open(path, "rb") as handle:
        imp = cdr_import_create(
            source=CdrImport.Source.ADMIN,
            agent=agent,
            created_by=staff,
            upload=File(handle, name="cdrs.csv"),
        )
    first = start_worker(MEDIA_ROOT=str(settings.MEDIA_ROOT))

    # when the import task runs and its worker is killed while the import
    # inserts the calls (its one transaction open)
    cdr_import_run_task.delay(imp.pk)
    wait_for(_inserting_calls, timeout=60, interval=0.02)
    first.kill()
    assert not CallRecord.objects.exists()
    assert CdrImport.objects.get(pk=imp.pk).status == CdrImport.Status.RUNNING
    # ... and another worker is started
    start_worker(MEDIA_ROOT=str(settings.MEDIA_ROOT))

    # then the import finishes: every valid row imported once, the others
    # rejected once, the counts right
    wait_for(
        lambda: CdrImport.objects.get(pk=imp.pk).status == CdrImport.Status.DONE,
        timeout=60,
    )
    imp.refresh_from_db()
    rejected = ROWS // BAD_EVERY
    assert (imp.rows_read, imp.imported, imp.duplicates, imp.rejected) == (
        ROWS,
        ROWS - rejected,
        0,
        rejected,
    )
    assert sorted(CallRecord.objects.values_list("call_id", flat=True)) == valid
    assert CdrImportError.objects.filter(cdr_import=imp).count() == rejected
    assert not CallRecord.objects.filter(rated_at__isnull=True).exists()
    # ... and rated as the rating service rates them from scratch
    imported = _ratings()
    calls_rate_many(
        keys=set(CallRecord.objects.values_list("subscription_id", "period"))
    )
    assert _ratings() == imported
