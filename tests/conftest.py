"""Shared fixtures. The suite runs on the real stack: PostgreSQL and Redis."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
import check_stack


def pytest_sessionstart(session):
    errors = check_stack.problems()
    if errors:
        pytest.exit("\n".join(errors), returncode=3)


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path):
    """Every test writes uploads to its own folder."""
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def agent(db):
    from tests.factories import AgentFactory

    return AgentFactory()


@pytest.fixture
def company(agent):
    from tests.factories import CompanyFactory

    return CompanyFactory(agent=agent)


@pytest.fixture
def owner(company):
    from tests.factories import UserFactory

    return UserFactory(company=company, role="owner")


@pytest.fixture
def agent_staff(agent):
    from tests.factories import AgentStaffFactory

    return AgentStaffFactory(agent=agent)


# --- a real Celery worker (invoices, slot 6; reusable) -----------------------


@pytest.fixture(scope="session")
def smtp_port():
    """A free loopback port for the tests' SMTP server (and the worker's EMAIL_URL)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class SmtpServer:
    """An aiosmtpd server on ``port`` that keeps what it receives; start/stop."""

    def __init__(self, port: int):
        self.port = port
        self.messages: list = []
        self.controller = None

    async def handle_DATA(self, server, session, envelope):
        import email
        from email import policy

        msg = email.message_from_bytes(envelope.content, policy=policy.default)
        self.messages.append((envelope, msg))
        return "250 Message accepted for delivery"

    def start(self):
        from aiosmtpd.controller import Controller

        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self):
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


@pytest.fixture
def smtp_server(smtp_port, settings):
    """A real SMTP server; the SMTP email backend points at it (started)."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = smtp_port
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_HOST_USER = ""
    settings.EMAIL_HOST_PASSWORD = ""
    server = SmtpServer(smtp_port)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def celery_worker_process(
    django_db_setup, django_db_blocker, tmp_path_factory, smtp_port
):
    """A ``celery -A config worker`` subprocess against the tests' database.

    It consumes a queue of its own (named after the test database and this
    process), so parallel test runs on the same Redis never take each other's
    tasks. Use the ``celery_worker`` fixture in tests: it routes tasks there.
    """
    import os
    import subprocess
    import time

    from django.conf import settings
    from django.db import connection

    with django_db_blocker.unblock():
        db_name = connection.settings_dict["NAME"]
    queue = f"test-{db_name}-{os.getpid()}"
    log = tmp_path_factory.mktemp("celery") / "worker.log"
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
        "CELERY_TASK_ALWAYS_EAGER": "false",
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{db_name}",
        "TEST_DATABASE_NAME": db_name,
        "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
        "CELERY_TASK_DEFAULT_QUEUE": queue,
        "REDIS_URL": settings.REDIS_URL,
        # The worker mails through the tests' SMTP server (smtp_server).
        "EMAIL_URL": f"smtp://127.0.0.1:{smtp_port}",
    }
    root = Path(__file__).resolve().parent.parent
    handle = open(log, "wb")  # noqa: SIM115 - closed at teardown
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--pool=prefork",
            "--concurrency=2",
            "--loglevel=INFO",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "-Q",
            queue,
            "-n",
            f"{queue}@%h",
        ],
        cwd=root,
        env=env,
        stdout=handle,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while b" ready." not in log.read_bytes():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("celery worker did not start:\n" + log.read_text())
        time.sleep(0.1)
    proc.queue = queue
    proc.log = log
    yield proc
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
    handle.close()


@pytest.fixture
def celery_worker(celery_worker_process):
    """Send tasks to the real worker for this test (not run eagerly)."""
    from config.celery_app import app

    saved = (app.conf.task_always_eager, app.conf.task_default_queue)
    app.conf.task_always_eager = False
    app.conf.task_default_queue = celery_worker_process.queue
    yield celery_worker_process
    app.conf.task_always_eager, app.conf.task_default_queue = saved


def wait_for(predicate, *, timeout: float = 60, interval: float = 0.1):
    """Poll ``predicate`` until it returns a true value; fail after ``timeout``."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting after {timeout}s")
        time.sleep(interval)
