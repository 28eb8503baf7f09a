"""Shared set-up for benchmarks: a PostgreSQL database of their own.

``setup_django()`` points Django at ``hotline400_bench`` (override with
BENCH_DATABASE_URL), creates it if needed and migrates it. Benchmarks print
figures with ``report()`` so the output reads the same everywhere.
"""

import os
import resource
import time
from contextlib import contextmanager

BENCH_DATABASE_URL = os.environ.get(
    "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/hotline400_bench"
)


def setup_django(*, migrate: bool = True) -> None:
    os.environ["DATABASE_URL"] = BENCH_DATABASE_URL
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.test")
    os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/15")
    _create_database()
    import django

    django.setup()
    if migrate:
        from django.core.management import call_command

        call_command("migrate", verbosity=0)


def _create_database() -> None:
    from urllib.parse import urlparse

    import psycopg

    url = urlparse(BENCH_DATABASE_URL)
    name = url.path.lstrip("/")
    admin = BENCH_DATABASE_URL.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [name]
        ).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')


@contextmanager
def timed():
    """``with timed() as t: ...`` then ``t()`` gives the seconds it took."""
    start = time.perf_counter()
    end: list[float] = []
    yield lambda: (end[0] if end else time.perf_counter()) - start
    end.append(time.perf_counter())


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    k = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[k]


def report(label: str, value, unit: str = "") -> None:
    print(f"{label:<48} {value}{(' ' + unit) if unit else ''}", flush=True)
