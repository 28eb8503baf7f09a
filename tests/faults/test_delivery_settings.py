"""At-least-once delivery: the Celery settings agree with each other and with
the tasks (the kill tests in test_worker_killed.py show them at work)."""

from config.celery_app import app
from config.settings import base

# Every task that is safe to run twice is acknowledged only once it is done,
# so a task of a worker that died is delivered again.
IDEMPOTENT = {
    "billing.close_month",
    "billing.close_run_fan_out",
    "billing.close_companies",
    "billing.close_company",
    "billing.send_invoice_email",
    "billing.cdr_import_run",
    "ops.sweep",
    "plans.release_expired_holds",
    "plans.release_quarantined_numbers",
}


def tasks():
    app.loader.import_default_modules()
    return {name: task for name, task in app.tasks.items() if "." in name}


def test_idempotent_tasks_are_acknowledged_late_and_rejected_if_the_worker_dies():
    assert base.CELERY_TASK_REJECT_ON_WORKER_LOST is True
    assert base.CELERY_WORKER_PREFETCH_MULTIPLIER == 1
    late = {name for name, task in tasks().items() if task.acks_late}
    assert late >= IDEMPOTENT


def test_a_live_task_is_never_delivered_twice():
    # The broker delivers an unacknowledged message again after the
    # visibility timeout: it must outlast the longest task (the hard time
    # limit) and the longest retry countdown a worker holds a message for.
    visibility = base.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"]
    assert base.CELERY_TASK_SOFT_TIME_LIMIT < base.CELERY_TASK_TIME_LIMIT
    assert visibility > base.CELERY_TASK_TIME_LIMIT
    longest_backoff = max(
        task.retry_backoff_max
        for task in tasks().values()
        if getattr(task, "autoretry_for", ())
    )
    assert longest_backoff < visibility
