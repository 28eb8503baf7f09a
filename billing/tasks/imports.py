"""Celery task of the CDR imports: large admin uploads run in the background."""

import logging

from celery import shared_task
from django.conf import settings
from django.utils import translation

from billing.models import CdrImport
from billing.services.cdr_import import cdr_import_lock, cdr_import_run

logger = logging.getLogger(__name__)


@shared_task(name="billing.cdr_import_run", acks_late=True)
def cdr_import_run_task(import_id: int) -> None:
    """Run a queued import; quietly does nothing if it is gone or finished.

    Acknowledged late: when the worker dies mid-import nothing was committed
    (the calls, rejected rows and summary are written in one transaction),
    so the redelivered task imports the file again from the start. The
    import's lock keeps two deliveries from running it at the same time; the
    status is read under it, so a finished import is never run again.
    """
    with cdr_import_lock(import_id=import_id) as owned:
        if not owned:
            logger.warning("CDR import %s is run by another worker", import_id)
            return
        imp = (
            CdrImport.objects.select_related("created_by").filter(pk=import_id).first()
        )
        if imp is None:
            logger.info("CDR import %s is gone", import_id)
            return
        language = (
            imp.created_by.language if imp.created_by_id else settings.LANGUAGE_CODE
        )
        with translation.override(language):
            cdr_import_run(cdr_import=imp)
