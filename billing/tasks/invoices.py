"""Celery tasks of the invoices: the monthly close and the invoice emails.

Tasks take ids and ISO dates, fetch what they need, return quietly when the
row is gone and call one service.

- ``close_month_task`` (beat, the 1st at 02:00 Asia/Shanghai): one close run
  per agent for the previous month; each run fans out ``close_company_task``.
- ``close_company_task``: idempotent (the draft is rebuilt to the same lines,
  an issued invoice is left alone, the run item is overwritten), so it is
  acknowledged late and survives a lost worker.
- ``invoice_email_send_task``: talks to SMTP, so it retries with exponential
  backoff; the claim in ``invoice_email_send`` makes a redelivery harmless.

Every task here is acknowledged late (at-least-once delivery: a task of a
worker that died is delivered again, see tests/faults): the close tasks are
idempotent as said, a second ``close_month_task`` only adds runs whose
companies are already closed, and a second fan-out only queues batches that
find their companies done.
"""

import datetime as dt
import logging
import smtplib

from celery import shared_task
from django.utils import timezone

from accounts.models import Agent, Company
from billing.models import CloseRun, CloseRunItem
from billing.services.invoices import (
    close_batch,
    close_company,
    close_item_finish,
    close_run_fan_out,
    close_run_start,
    previous_month,
)

logger = logging.getLogger(__name__)


@shared_task(name="billing.close_month", acks_late=True)
def close_month_task(period: str = "") -> list[int]:
    """Start the close of ``period`` (ISO date; default: last month) per agent."""
    month = (
        dt.date.fromisoformat(period)
        if period
        else previous_month(timezone.localdate())
    )
    runs = []
    for agent in Agent.objects.order_by("pk"):
        run = close_run_start(agent=agent, period=month)
        runs.append(run.pk)
    return runs


@shared_task(name="billing.close_run_fan_out", acks_late=True)
def close_run_fan_out_task(run_id: int) -> int:
    """Enqueue the companies of a close run (from a worker, not a web request)."""
    run = CloseRun.objects.filter(pk=run_id).first()
    if run is None:
        return 0
    return close_run_fan_out(run=run)


@shared_task(name="billing.close_companies", acks_late=True)
def close_companies_task(company_ids: list[int], period: str, run_id: int) -> int:
    """A fixed-size batch of a close run; idempotent like ``close_company``.

    If the batch fails as a whole, its companies are closed one by one so
    each failure is recorded against its own company.
    """
    run = CloseRun.objects.filter(pk=run_id).first()
    if run is None:
        return 0
    try:
        return len(close_batch(run=run, company_ids=list(company_ids)))
    except Exception:
        logger.exception("close batch of run %s failed; retrying one by one", run_id)
    for company_id in company_ids:
        try:
            close_company_task(company_id, period, run_id)
        except Exception:  # recorded on the item by close_company_task
            logger.warning("close of company %s failed", company_id)
    return len(company_ids)


@shared_task(name="billing.close_company", acks_late=True)
def close_company_task(company_id: int, period: str, run_id: int | None = None) -> str:
    company = Company.objects.filter(pk=company_id).first()
    run = CloseRun.objects.filter(pk=run_id).first() if run_id else None
    if company is None or (run_id and run is None):
        return "gone"
    issue = run.issue if run is not None else company.agent.auto_issue_invoices
    try:
        return close_company(
            company=company,
            period=dt.date.fromisoformat(period),
            issue=issue,
            run=run,
        )
    except Exception as exc:
        # Recorded for the progress page; the other companies go on.
        logger.exception("close of company %s for %s failed", company_id, period)
        if run is not None:
            close_item_finish(
                run=run,
                company=company,
                status=CloseRunItem.Status.FAILED,
                error=f"{type(exc).__name__}: {exc}",
            )
        raise


@shared_task(
    bind=True,
    name="billing.send_invoice_email",
    acks_late=True,
    autoretry_for=(smtplib.SMTPException, OSError),
    retry_backoff=True,
    retry_backoff_max=3600,
    retry_jitter=True,
    max_retries=8,
)
def invoice_email_send_task(self, email_id: int) -> str:
    from billing.services.invoices import invoice_email_send

    return invoice_email_send(email_id=email_id)
