"""Beat tasks: give expired holds and rested numbers back to stock."""

import logging

from celery import shared_task

from . import services

logger = logging.getLogger(__name__)


@shared_task(name="plans.release_expired_holds", acks_late=True)
def release_expired_holds_task() -> int:
    """Idempotent: releasing an already released hold changes nothing."""
    released = services.holds_release_expired()
    if released:
        logger.info("released %d expired holds", released)
    return released


@shared_task(name="plans.release_quarantined_numbers", acks_late=True)
def release_quarantined_numbers_task() -> int:
    """Idempotent: a number back in stock is not touched again."""
    returned = services.numbers_release_quarantine()
    if returned:
        logger.info("returned %d rested numbers to stock", returned)
    return returned
