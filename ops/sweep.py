"""The sweeper: resume work whose enqueue was lost or whose worker died.

Beat runs ``ops.sweep`` every 5 minutes. Every task it queues is idempotent,
so queuing one that is in fact still on its way costs a little work, never a
double effect:

- deferred tasks (the broker was down when they were enqueued) are queued
  again, oldest first, and deleted once queued;
- a close run with no company finished for ``HOTLINE_SWEEP_STALE_MINUTES``
  is fanned out again (its pending companies only; a run with none left is
  marked done);
- an invoice email pending for that long, claimed by a worker that died
  (``EMAIL_CLAIM_STALE``), or failed with retries left but no retry seen
  for longer than the longest backoff, is queued again (the claim makes a
  second delivery send nothing);
- a back-office CDR import queued or running for that long whose lock no
  worker holds is queued again (it restarts the file; nothing was committed
  by the lost run).
"""

from __future__ import annotations

import datetime as dt
import logging

from django.conf import settings
from django.db import transaction
from django.db.models import Max, Q
from django.utils import timezone

from ops.enqueue import enqueue
from ops.models import DeferredTask

logger = logging.getLogger(__name__)

# Deferred tasks queued per sweep (the rest wait for the next one).
DEFERRED_PER_SWEEP = 1000


def sweep_run(*, now: dt.datetime | None = None) -> dict[str, int]:
    """One sweep; returns how many tasks of each kind were queued."""
    now = now or timezone.now()
    stale = dt.timedelta(minutes=settings.HOTLINE_SWEEP_STALE_MINUTES)
    # The rows below are their own record: a re-send that fails is retried
    # by the next sweep, not recorded again.
    counts = {
        "deferred": deferred_tasks_send(),
        "close_runs": close_runs_resume(now=now, stale=stale),
        "invoice_emails": invoice_emails_resume(now=now, stale=stale),
        "cdr_imports": cdr_imports_resume(now=now, stale=stale),
    }
    if any(counts.values()):
        logger.warning("sweep queued again: %s", counts)
    return counts


def deferred_tasks_send() -> int:
    """Queue the recorded tasks again; stops at the first broker failure."""
    from config.celery_app import app

    # Outside a worker the task modules are imported on demand: import them
    # all (autodiscovery), so every recorded name resolves.
    app.loader.import_default_modules()
    sent = 0
    for pk in DeferredTask.objects.values_list("pk", flat=True)[:DEFERRED_PER_SWEEP]:
        with transaction.atomic():
            row = (
                DeferredTask.objects.select_for_update(skip_locked=True)
                .filter(pk=pk)
                .first()
            )
            if row is None:  # another sweep has it
                continue
            task = app.tasks.get(row.name)
            if task is None:  # renamed by a release: kept for a person to see
                logger.error("deferred task %s is unknown; kept", row)
                continue
            if not enqueue(task, *row.args, record=False):
                break  # still down: everything stays recorded
            row.delete()
        sent += 1
    return sent


def close_runs_resume(*, now: dt.datetime, stale: dt.timedelta) -> int:
    from billing.models import CloseRun
    from billing.tasks.invoices import close_run_fan_out_task

    quiet = now - stale
    runs = (
        CloseRun.objects.filter(status=CloseRun.Status.RUNNING, started_at__lt=quiet)
        .annotate(last=Max("items__finished_at"))
        .filter(Q(last__isnull=True) | Q(last__lt=quiet))
        .values_list("pk", flat=True)
    )
    return sum(enqueue(close_run_fan_out_task, pk, record=False) for pk in runs)


def invoice_emails_resume(*, now: dt.datetime, stale: dt.timedelta) -> int:
    from billing.models import InvoiceEmail
    from billing.services.invoices import EMAIL_CLAIM_STALE
    from billing.tasks.invoices import invoice_email_send_task as task

    Status = InvoiceEmail.Status
    # A failed email waits for its retry at most the longest backoff.
    longest_wait = dt.timedelta(seconds=task.retry_backoff_max)
    candidates = InvoiceEmail.objects.filter(
        Q(status=Status.PENDING, created_at__lt=now - stale)
        | Q(status=Status.SENDING, claimed_at__lt=now - EMAIL_CLAIM_STALE)
        | Q(status=Status.FAILED, claimed_at__lt=now - longest_wait - stale)
    ).values_list("pk", "status", "attempts")
    # Retries left: the first attempt plus max_retries. An email that used
    # them all stays failed for staff to resend (the admin lists it).
    ids = [
        pk
        for pk, status, attempts in candidates
        if status != Status.FAILED or len(attempts) <= task.max_retries
    ]
    return sum(enqueue(task, pk, record=False) for pk in ids)


def cdr_imports_resume(*, now: dt.datetime, stale: dt.timedelta) -> int:
    from billing.models import CdrImport
    from billing.services.cdr_import import cdr_import_busy
    from billing.tasks.imports import cdr_import_run_task

    quiet = now - stale
    # Only back-office uploads run as tasks from a stored file; the command
    # and the API import in their own process.
    stuck = (
        CdrImport.objects.filter(source=CdrImport.Source.ADMIN)
        .exclude(file="")
        .filter(
            Q(status=CdrImport.Status.QUEUED, created_at__lt=quiet)
            | Q(status=CdrImport.Status.RUNNING, started_at__lt=quiet)
        )
        .values_list("pk", flat=True)
    )
    return sum(
        enqueue(cdr_import_run_task, pk, record=False)
        for pk in stuck
        if not cdr_import_busy(import_id=pk)
    )
