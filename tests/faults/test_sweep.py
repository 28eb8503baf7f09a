"""The sweeper resumes work whose enqueue was lost or whose worker died.

Tasks run in-process here (eager), so "queued again" shows as "done". Lost
work is made by skipping the enqueue (the on-commit callbacks of a test in a
transaction never run) and the clock is moved with ``now``.
"""

import datetime as dt
import threading

import pytest
from django.conf import settings
from django.core import mail
from django.core.files.base import ContentFile
from django.db import connection
from django.utils import timezone

from accounts.services import invitation_create
from billing.models import CallRecord, CdrImport, CloseRun, Invoice, InvoiceEmail
from billing.services.cdr_import import IMPORT_RUN_LOCK, cdr_import_create
from billing.services.invoices import close_run_start, invoice_generate, invoice_issue
from ops.models import DeferredTask
from ops.sweep import sweep_run
from tests.factories import (
    AgentFactory,
    AgentStaffFactory,
    CompanyFactory,
    SubscriptionFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

MARCH = dt.date(2026, 3, 1)
STALE = dt.timedelta(minutes=settings.HOTLINE_SWEEP_STALE_MINUTES)
NOTHING = {"deferred": 0, "close_runs": 0, "invoice_emails": 0, "cdr_imports": 0}


def later(minutes: float) -> dt.datetime:
    return timezone.now() + dt.timedelta(minutes=minutes)


def test_the_sweep_runs_every_five_minutes_and_expires_before_the_next():
    entry = settings.CELERY_BEAT_SCHEDULE["ops.sweep"]
    assert entry["task"] == "ops.sweep"
    assert entry["schedule"] == 300
    assert 0 < entry["options"]["expires"] < entry["schedule"]


# --- close runs ------------------------------------------------------------------


def lost_close_run(n=3):
    """A close run whose fan-out never reached a worker."""
    agent = AgentFactory()
    for _ in range(n):
        SubscriptionFactory(company=CompanyFactory(agent=agent), activated_on=MARCH)
    return close_run_start(agent=agent, period=MARCH, fan_out=False)


def test_a_close_run_whose_enqueue_was_lost_is_resumed():
    # given a run whose companies were never queued
    run = lost_close_run()

    # when the sweeper runs once it has been quiet for the stale time
    counts = sweep_run(now=later(STALE.total_seconds() / 60 + 1))

    # then the run is fanned out again and finishes: one draft per company
    assert counts["close_runs"] == 1
    run.refresh_from_db()
    assert run.status == CloseRun.Status.DONE
    assert set(run.items.values_list("status", flat=True)) == {"draft"}
    assert Invoice.objects.filter(company__agent=run.agent).count() == 3


def test_a_close_run_within_the_stale_time_is_left_alone():
    # given a run started a moment ago
    run = lost_close_run()

    # when the sweeper runs before the stale time has passed
    counts = sweep_run(now=later(STALE.total_seconds() / 60 - 1))

    # then nothing is queued
    assert counts == NOTHING
    assert CloseRun.objects.get(pk=run.pk).status == CloseRun.Status.RUNNING


def test_a_close_run_still_making_progress_is_left_alone():
    # given an old run whose last company finished a minute ago
    run = lost_close_run()
    CloseRun.objects.filter(pk=run.pk).update(started_at=later(-60))
    run.items.filter(pk=run.items.first().pk).update(
        status="draft", finished_at=later(-1)
    )

    # when the sweeper runs
    counts = sweep_run()

    # then nothing is queued
    assert counts == NOTHING


def test_a_run_whose_worker_died_after_the_last_company_is_marked_done():
    # given a run whose items are all finished but which was never marked done
    run = lost_close_run(n=1)
    run.items.update(status="skipped", finished_at=later(-60))
    CloseRun.objects.filter(pk=run.pk).update(started_at=later(-60))

    # when the sweeper runs
    sweep_run()

    # then the run is done
    assert CloseRun.objects.get(pk=run.pk).status == CloseRun.Status.DONE


# --- invoice emails ------------------------------------------------------------


def issued_invoice():
    """An issued invoice whose email was recorded but never queued."""
    company = CompanyFactory()
    SubscriptionFactory(company=company, activated_on=MARCH)
    invoice = invoice_generate(company=company, period=MARCH)
    return invoice_issue(invoice=invoice)


def test_an_invoice_email_never_queued_is_sent_by_the_sweeper():
    # given an issued invoice whose email stayed pending
    invoice = issued_invoice()
    email = InvoiceEmail.objects.get(invoice=invoice)
    assert email.status == InvoiceEmail.Status.PENDING

    # when the sweeper runs after the stale time
    counts = sweep_run(now=later(STALE.total_seconds() / 60 + 1))

    # then the email is sent, once
    assert counts["invoice_emails"] == 1
    email.refresh_from_db()
    assert email.status == InvoiceEmail.Status.SENT
    assert [m.to for m in mail.outbox] == [[invoice.buyer_email]]
    # and a second sweep sends nothing more
    assert sweep_run(now=later(STALE.total_seconds() / 60 + 1)) == NOTHING
    assert len(mail.outbox) == 1


def test_an_email_claimed_by_a_dead_worker_is_sent_once_the_claim_is_stale():
    # given an email claimed for sending by a worker that died 11 minutes ago
    email = InvoiceEmail.objects.get(invoice=issued_invoice())
    InvoiceEmail.objects.filter(pk=email.pk).update(
        status=InvoiceEmail.Status.SENDING, claimed_at=later(-11)
    )

    # when the sweeper runs
    sweep_run()

    # then it is sent
    assert InvoiceEmail.objects.get(pk=email.pk).status == InvoiceEmail.Status.SENT
    assert len(mail.outbox) == 1


def test_an_email_being_sent_now_is_left_alone():
    # given an email claimed a minute ago (a live worker is sending it)
    email = InvoiceEmail.objects.get(invoice=issued_invoice())
    InvoiceEmail.objects.filter(pk=email.pk).update(
        status=InvoiceEmail.Status.SENDING, claimed_at=later(-1)
    )

    # when the sweeper runs
    counts = sweep_run()

    # then it is not queued again
    assert counts["invoice_emails"] == 0
    assert not mail.outbox


def failed_email(attempts: int, minutes_ago: float):
    email = InvoiceEmail.objects.get(invoice=issued_invoice())
    attempt = {"at": later(-minutes_ago).isoformat(), "result": "failed", "error": "x"}
    InvoiceEmail.objects.filter(pk=email.pk).update(
        status=InvoiceEmail.Status.FAILED,
        claimed_at=later(-minutes_ago),
        attempts=[attempt] * attempts,
    )
    return email


def test_a_failed_email_whose_retry_was_lost_is_queued_again():
    # given an email that failed twice, its retry not seen for 2 hours
    email = failed_email(attempts=2, minutes_ago=120)

    # when the sweeper runs
    sweep_run()

    # then it is sent, the earlier attempts kept
    email.refresh_from_db()
    assert email.status == InvoiceEmail.Status.SENT
    assert [a["result"] for a in email.attempts] == ["failed", "failed", "sent"]


def test_a_failed_email_waiting_for_its_retry_is_left_alone():
    # given an email that failed 30 minutes ago (its retry may wait up to 1 h)
    failed_email(attempts=5, minutes_ago=30)

    # when the sweeper runs
    counts = sweep_run()

    # then it is left to its retry
    assert counts["invoice_emails"] == 0
    assert not mail.outbox


def test_an_email_out_of_retries_is_left_for_staff():
    # given an email that failed on every attempt the task allows
    from billing.tasks.invoices import invoice_email_send_task

    failed_email(attempts=invoice_email_send_task.max_retries + 1, minutes_ago=300)

    # when the sweeper runs
    counts = sweep_run()

    # then it stays failed (the admin lists it for a resend)
    assert counts["invoice_emails"] == 0
    assert not mail.outbox


# --- CDR imports ---------------------------------------------------------------

CSV = (
    "call_id,service_number,caller_number,caller_area,answer_number,start_time,"
    "duration_seconds,direction,status\n"
    "SW-1,4008100001,13800138000,,,2026-03-03 10:00:00,45,inbound,answered\n"
    "SW-2,4008100001,13800138000,,,2026-03-03 11:00:00,200,inbound,answered\n"
)


def stuck_import(status=CdrImport.Status.QUEUED, minutes_ago=60):
    """A back-office import whose task never ran (or died with its worker)."""
    from tests.factories import PhoneNumberFactory

    agent = AgentFactory()
    SubscriptionFactory(
        company=CompanyFactory(agent=agent),
        number=PhoneNumberFactory(number="4008100001", status="subscribed"),
        activated_on=MARCH,
    )
    upload = ContentFile(CSV.encode(), name="cdrs.csv")
    imp = cdr_import_create(
        source=CdrImport.Source.ADMIN,
        agent=agent,
        created_by=AgentStaffFactory(agent=agent),
        upload=upload,
    )
    CdrImport.objects.filter(pk=imp.pk).update(
        status=status, created_at=later(-minutes_ago), started_at=later(-minutes_ago)
    )
    return imp


@pytest.mark.parametrize("status", [CdrImport.Status.QUEUED, CdrImport.Status.RUNNING])
def test_a_stuck_import_is_run_again(status):
    # given an upload queued (or running) an hour ago with no worker on it
    imp = stuck_import(status)

    # when the sweeper runs
    counts = sweep_run()

    # then the import runs to the end: each call once
    assert counts["cdr_imports"] == 1
    imp.refresh_from_db()
    assert (imp.status, imp.imported, imp.rejected) == ("done", 2, 0)
    assert CallRecord.objects.count() == 2


def test_a_recent_import_is_left_alone():
    stuck_import(minutes_ago=1)

    assert sweep_run() == NOTHING


@pytest.mark.django_db(transaction=True)
def test_an_import_a_live_worker_is_running_is_left_alone():
    # given an old running import whose lock another connection holds
    imp = stuck_import(CdrImport.Status.RUNNING)
    locked, release = threading.Event(), threading.Event()

    def worker():
        try:
            with connection.cursor() as cur:
                key = [IMPORT_RUN_LOCK, imp.pk]
                cur.execute("SELECT pg_advisory_lock(%s, %s)", key)
                locked.set()
                release.wait(30)
        finally:
            connection.close()

    thread = threading.Thread(target=worker)
    thread.start()
    try:
        assert locked.wait(30)
        # when the sweeper runs
        counts = sweep_run()
    finally:
        release.set()
        thread.join()

    # then it leaves the import to its worker
    assert counts["cdr_imports"] == 0
    assert CdrImport.objects.get(pk=imp.pk).status == CdrImport.Status.RUNNING


# --- deferred tasks --------------------------------------------------------------


def test_deferred_tasks_are_queued_and_forgotten():
    # given an invitation whose email task was recorded while the broker was
    # down (the on-commit enqueue of a test transaction never runs)
    owner = UserFactory(role="owner")
    invitation, token = invitation_create(
        company=owner.company, email="new@company.example.cn", role="member", by=owner
    )
    DeferredTask.objects.create(
        name="accounts.send_invitation_email", args=[invitation.pk, token]
    )

    # when the sweeper runs (at once: no stale time for recorded tasks)
    counts = sweep_run()

    # then the invitation is emailed with its link, and the record is gone
    assert counts["deferred"] == 1
    (message,) = mail.outbox
    assert message.to == ["new@company.example.cn"]
    assert token in message.body
    assert not DeferredTask.objects.exists()
