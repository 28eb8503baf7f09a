"""The sweeper's beat task (every 5 minutes, see CELERY_BEAT_SCHEDULE)."""

from celery import shared_task

from ops.sweep import sweep_run


@shared_task(name="ops.sweep", acks_late=True)
def sweep_task() -> dict[str, int]:
    """Idempotent: it only queues idempotent tasks again."""
    return sweep_run()
