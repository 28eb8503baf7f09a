"""Celery tasks of the billing app. autodiscover_tasks() imports this module,
so every task module is imported here."""

from . import (
    imports,  # noqa: F401
    invoices,  # noqa: F401
)
