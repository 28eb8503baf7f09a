"""Enqueue tasks so that a broker outage loses nothing.

The pattern: the work is recorded in the database by the service (a
``CdrImport`` queued, a ``CloseRun`` with pending items, an ``InvoiceEmail``
pending), the task is enqueued after the commit, and when the broker cannot
be reached the task itself is recorded as a ``DeferredTask`` for the sweeper
(``ops.sweep``) instead of raising into the request. The user is told that
the work will start later (``ops.middleware``).
"""

from __future__ import annotations

import logging
from contextvars import ContextVar

from django.db import transaction
from kombu.exceptions import OperationalError

logger = logging.getLogger(__name__)

# What a publish raises when the broker is down or unreachable: kombu wraps
# the transport's connection errors as OperationalError; a socket error can
# still escape from the connect itself.
BROKER_ERRORS = (OperationalError, OSError)

# Set by ops.middleware for the duration of a request: how many tasks could
# not be queued while serving it.
_deferred: ContextVar[list | None] = ContextVar("ops_deferred", default=None)


def enqueue(task, *args, record: bool = True) -> bool:
    """Queue ``task(*args)``; False when the broker is unreachable.

    Then the task is recorded for the sweeper (unless ``record`` is False,
    for the sweeper's own re-sends) and the current request notes it. In
    eager mode (tests, ``make run``) the task runs here and its errors
    propagate as before.
    """
    if task.app.conf.task_always_eager:
        task.apply_async(args)
        return True
    try:
        task.apply_async(args)
    except BROKER_ERRORS as exc:
        error = f"{type(exc).__name__}: {exc}"[:300]
        logger.error("could not queue %s%r: %s", task.name, args, error)
        if record:
            from ops.models import DeferredTask

            DeferredTask.objects.create(name=task.name, args=list(args), error=error)
        noted = _deferred.get()
        if noted is not None:
            noted.append(task.name)
        return False
    return True


def enqueue_on_commit(task, *args, robust: bool = False) -> None:
    """``enqueue`` once the current transaction commits (never if it rolls back).

    A broker outage never raises (the task is recorded); ``robust`` also
    swallows (and logs) errors of an eagerly run task.
    """
    transaction.on_commit(lambda: enqueue(task, *args), robust=robust)


def deferred_start() -> object:
    """Start noting deferred tasks (one request); returns a token for the end."""
    return _deferred.set([])


def deferred_end(token) -> list[str]:
    """The names of the tasks deferred since ``deferred_start``; stop noting."""
    noted = _deferred.get() or []
    _deferred.reset(token)
    return noted
