"""Real Celery workers that the fault tests can kill, on a broker of their own.

Each test gets its own broker namespace (a Redis key prefix: queues, the
unacked-message index and its restore all live under it), so a worker here
never takes or restores another test's messages, and a short visibility
timeout, so a message of a killed worker is delivered again within seconds
instead of the production two hours. The test process publishes with the
same options (``fault_broker``).

Workers are started in a session (process group) of their own: ``kill()``
sends SIGKILL to the whole group, the main process and its pool children at
once, like a machine that dies. Every worker a test started is killed in the
fixture's finalizer, whatever the outcome, and its database connections are
terminated so the database can be flushed.
"""

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import kombu.pools
import pytest
from django.db import connection

from tests.conftest import wait_for

ROOT = Path(__file__).resolve().parents[2]
# Seconds before an unacknowledged message counts as lost and is delivered
# again: longer than any single task of these tests takes.
VISIBILITY_TIMEOUT = 4


class FaultBroker:
    def __init__(self, url: str, prefix: str, queue: str):
        self.url = url
        self.queue = queue
        self.transport_options = {
            "visibility_timeout": VISIBILITY_TIMEOUT,
            "global_keyprefix": prefix,
            # Look for lost messages every second (default: every 100 s).
            "unacked_restore_interval": 1,
            "unacked_restore_throttle": 1,
        }


@pytest.fixture
def fault_broker(settings):
    """Point this process's Celery app at a fresh broker namespace (not eager)."""
    from config.celery_app import app

    name = f"faults-{uuid.uuid4().hex[:12]}"
    broker = FaultBroker(settings.CELERY_BROKER_URL, f"{name}:", name)
    # The broker URL stays the tests' own (settings.CELERY_BROKER_URL, which
    # is also what app.conf.broker_url gives); only the options change.
    keys = (
        "broker_transport_options",
        "task_always_eager",
        "task_default_queue",
    )
    saved = {key: app.conf[key] for key in keys}
    app.conf.broker_transport_options = broker.transport_options
    app.conf.task_always_eager = False
    app.conf.task_default_queue = broker.queue
    reset_publishing(app)
    yield broker
    for key, value in saved.items():
        app.conf[key] = value
    reset_publishing(app)
    _purge(broker)


def reset_publishing(app) -> None:
    """Make the next publish use ``app.conf`` as it is now.

    Celery builds what it publishes with from the configuration once, on
    first use, and keeps it: the broker connection pool (``app.pool``),
    kombu's producer pools (global, keyed by broker URL, so they ignore a
    changed key prefix) and the routing with its default queue
    (``app.amqp``, a cached property). Changing ``app.conf`` alone would keep
    publishing to the old broker and queue, so all three are dropped here
    and rebuilt lazily from the new configuration.
    """
    kombu.pools.reset()
    app._pool = None
    del app.amqp


def _purge(broker: FaultBroker) -> None:
    import redis

    client = redis.Redis.from_url(broker.url)
    prefix = broker.transport_options["global_keyprefix"]
    keys = list(client.scan_iter(match=f"{prefix}*"))
    if keys:
        client.delete(*keys)


class Worker:
    """A ``celery -A config worker`` process group against the test database."""

    def __init__(self, broker: FaultBroker, log: Path, env: dict, concurrency: int):
        self.log = log
        self.app_name = f"faults-worker-{uuid.uuid4().hex[:8]}"
        db_name = connection.settings_dict["NAME"]
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings.test",
            "CELERY_TASK_ALWAYS_EAGER": "false",
            # Production's connection settings (config/settings/production.py);
            # Celery's Django fix-up closes the connections around each task
            # all the same (tests/faults/test_database_restart.py).
            "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{db_name}"
            f"?application_name={self.app_name}"
            "&conn_max_age=60&conn_health_checks=true",
            "TEST_DATABASE_NAME": db_name,
            "CELERY_BROKER_URL": broker.url,
            "CELERY_BROKER_TRANSPORT_OPTIONS": json.dumps(broker.transport_options),
            "CELERY_TASK_DEFAULT_QUEUE": broker.queue,
            **env,
        }
        self.args = [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--pool=prefork",
            f"--concurrency={concurrency}",
            "--loglevel=INFO",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "-Q",
            broker.queue,
            "-n",
            f"{self.app_name}@%h",
        ]
        self.proc = None
        self.handle = None

    def start(self) -> "Worker":
        self.handle = open(self.log, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            self.args,
            cwd=ROOT,
            env=self.env,
            stdout=self.handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 60
        while b" ready." not in self.log.read_bytes():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise RuntimeError("celery worker did not start:\n" + self.output())
            time.sleep(0.05)
        return self

    def kill(self) -> None:
        """SIGKILL the worker and its pool processes at once (no clean-up)."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        if self.proc is not None:
            # pool children left behind by a kill of the parent only
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        if self.handle is not None:
            self.handle.close()
            self.handle = None

    def kill_pool_processes(self) -> list[int]:
        """SIGKILL the worker's pool processes only (as the OOM killer would);
        the main process lives on and starts new ones."""
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        pids = [int(pid) for pid in children.read_text().split()]
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
        return pids

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def backends(self) -> int:
        """How many database connections the worker has open."""
        return len(self.backend_pids())

    def backend_pids(self) -> set[int]:
        with connection.cursor() as cur:
            cur.execute(
                "SELECT pid FROM pg_stat_activity WHERE application_name = %s",
                [self.app_name],
            )
            return {pid for (pid,) in cur.fetchall()}

    def terminate_backends(self) -> None:
        with connection.cursor() as cur:
            cur.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = %s",
                [self.app_name],
            )


@pytest.fixture
def start_worker(transactional_db, fault_broker, smtp_port, tmp_path):
    """``start_worker(concurrency=1, **env)`` starts a worker and waits until
    it is ready; every worker started is killed at teardown, and its database
    sessions ended (a killed worker's session can outlive it for a moment)."""
    started: list[Worker] = []

    def start(concurrency: int = 1, **env) -> Worker:
        env.setdefault("EMAIL_URL", f"smtp://127.0.0.1:{smtp_port}")
        log = tmp_path / f"worker-{len(started)}.log"
        worker = Worker(fault_broker, log, env, concurrency)
        started.append(worker)
        return worker.start()

    yield start
    for worker in started:
        worker.kill()
    for worker in started:
        worker.terminate_backends()
        wait_for(lambda w=worker: w.backends() == 0, timeout=30)
