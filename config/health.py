"""Liveness of what the portal needs: database, Redis, and a Celery worker.

``GET /health/`` answers 200 when every required part is up and 503 when one
is down, with a JSON body naming each part, for load balancers and alerts.
A worker is required only when tasks are not run in-process.
"""

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from config.celery_app import app as celery_app


def _database() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as exc:  # any failure means "down"; the reason is reported
        return f"down: {exc.__class__.__name__}"
    return "ok"


def _redis() -> str:
    if not settings.REDIS_URL:
        return "not used"
    try:
        cache.set("health:ping", "1", timeout=10)
        if cache.get("health:ping") != "1":
            return "down: read back failed"
    except Exception as exc:
        return f"down: {exc.__class__.__name__}"
    return "ok"


def _worker() -> str:
    if settings.CELERY_TASK_ALWAYS_EAGER:
        return "in-process"
    try:
        replies = celery_app.control.ping(timeout=1.0)
    except Exception as exc:
        return f"down: {exc.__class__.__name__}"
    return f"ok: {len(replies)}" if replies else "down: no worker answered"


@never_cache
@require_GET
def health(request):
    parts = {"database": _database(), "redis": _redis(), "worker": _worker()}
    healthy = not any(value.startswith("down") for value in parts.values())
    return JsonResponse(
        {"status": "ok" if healthy else "down", **parts},
        status=200 if healthy else 503,
    )
