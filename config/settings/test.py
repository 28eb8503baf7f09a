"""Test settings: the real stack (PostgreSQL and Redis on localhost).

Tests never fall back to SQLite: a suite that passes here passes against the
database production uses. URLs are overridable through the environment.
"""

import os
from pathlib import Path

from .base import *  # noqa: F403
from .base import BASE_DIR, env

SECRET_KEY = "test-only-secret-key-not-for-production-0123456789abcdef"
DEBUG = False
ALLOWED_HOSTS = ["testserver", "127.0.0.1", "localhost"]

DATABASES = {
    "default": env.db(
        "DATABASE_URL", default="postgres://postgres@127.0.0.1:5432/hotline400"
    ),
}
DATABASES["default"]["TEST"] = {
    "NAME": env.str("TEST_DATABASE_NAME", default="test_hotline400")
}

REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:6379/0")
CACHES = {
    "default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": f"test-{os.getpid()}",
    }
}
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL)
# Most tests run tasks in-process; the tests that need a real worker start one
# (see tests/conftest.py) with CELERY_TASK_ALWAYS_EAGER=false in its env.
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=True)
# A test worker consumes a queue of its own (tests/conftest.py).
CELERY_TASK_DEFAULT_QUEUE = env.str("CELERY_TASK_DEFAULT_QUEUE", default="celery")
# The fault tests (tests/faults) start workers with a short visibility timeout
# and a key prefix of their own, given here as JSON.
CELERY_BROKER_TRANSPORT_OPTIONS = env.json(
    "CELERY_BROKER_TRANSPORT_OPTIONS",
    default=CELERY_BROKER_TRANSPORT_OPTIONS,
)

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# In-memory by default; a real Celery worker started by the tests gets
# EMAIL_URL (e.g. smtp://127.0.0.1:2525) to talk to the tests' SMTP server.
if env.str("EMAIL_URL", default=""):
    vars().update(env.email_url("EMAIL_URL"))
else:
    EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"

VAR_DIR = BASE_DIR / "var" / "test"
# A worker started by a test reads the files that test stored (tests/faults).
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(VAR_DIR / "media")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
AXES_ENABLED = True
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = True
