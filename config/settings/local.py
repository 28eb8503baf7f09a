"""Embedded default: SQLite, Celery eager in-process, emails written to var/mail.

A newcomer needs nothing but Python. Every value can still be overridden from
the environment (for example DATABASE_URL to try PostgreSQL locally).
"""

from .base import *  # noqa: F403
from .base import VAR_DIR, env

DEBUG = env.bool("DJANGO_DEBUG", default=True)
SECRET_KEY = env.str(
    "DJANGO_SECRET_KEY", default="local-only-insecure-key-do-not-use-in-production"
)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])

# No broker needed: tasks run in-process, right after the transaction commits.
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=True)

VAR_DIR.mkdir(parents=True, exist_ok=True)

# Serve static files straight from the source folders while developing.
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
