"""Redis (the broker) down while a request enqueues work: no error page, the
user is told, the work is recorded and the sweeper queues it once the broker
is back. Nothing is lost.

The broker is "down" by pointing this process's Celery app at a port where
nothing listens (see ``dead_broker``); the requests really commit, so their
on-commit enqueues really run (transactional tests).
"""

import re
import time

import pytest
from django.core import mail
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from accounts.models import Invitation
from billing.models import CallRecord, CdrImport, CloseRun, Invoice, InvoiceEmail
from billing.services.invoices import invoice_generate, invoice_issue
from ops.models import DeferredTask
from ops.sweep import sweep_run
from tests.factories import (
    AgentStaffFactory,
    CompanyFactory,
    PhoneNumberFactory,
    SubscriptionFactory,
    UserFactory,
)
from tests.faults.conftest import reset_publishing
from tests.faults.data import MARCH

pytestmark = pytest.mark.django_db(transaction=True)

DEAD_BROKER = "redis://127.0.0.1:1/0"  # port 1: connection refused at once
WARNING_EN = "The task queue cannot be reached right now."
WARNING_ZH = "任务队列暂时无法连接"


class Broker:
    """Publishing goes to ``broker_write_url``: Celery reads it from the
    configuration (``broker_url``, by contrast, prefers the environment's
    CELERY_BROKER_URL, so assigning it may change nothing)."""

    def __init__(self, app):
        self.app = app
        self.saved = (app.conf.get("broker_write_url"), app.conf.task_always_eager)

    def down(self):
        self.app.conf.broker_write_url = DEAD_BROKER
        self.app.conf.task_always_eager = False
        reset_publishing(self.app)

    def back(self):
        """The broker is back; tasks run in-process again (eager)."""
        self.app.conf.broker_write_url, self.app.conf.task_always_eager = self.saved
        reset_publishing(self.app)


@pytest.fixture
def broker():
    """The broker, down until ``back()`` (and always back after the test).

    Celery keeps the connections it opened, so the URL change needs
    ``reset_publishing`` (tests/faults/conftest.py) to take effect.
    """
    from config.celery_app import app

    state = Broker(app)
    state.down()
    yield state
    state.back()


def client_for(user, language="en") -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE=language)
    client.force_login(user)
    return client


def test_running_the_close_with_the_broker_down_starts_it_later(broker):
    # given agent staff and two companies to close
    staff = AgentStaffFactory()
    for _ in range(2):
        company = CompanyFactory(agent=staff.agent)
        SubscriptionFactory(company=company, activated_on=MARCH)
    client = client_for(staff)

    # when they run the close while the broker is down
    started = time.monotonic()
    start = reverse("admin:billing_closerun_start")
    response = client.post(start, {"period": "2026-03"})
    elapsed = time.monotonic() - started

    # then the run is recorded and they land on its page with a warning, fast
    run = CloseRun.objects.get()
    assert response.status_code == 302
    assert response.url == reverse("admin:billing_closerun_progress", args=[run.pk])
    assert elapsed < 10
    assert WARNING_EN in client.get(response.url).text
    assert set(run.items.values_list("status", flat=True)) == {"pending"}
    (deferred,) = DeferredTask.objects.all()
    assert (deferred.name, deferred.args) == ("billing.close_run_fan_out", [run.pk])
    # and once the broker is back the sweeper starts it: the run finishes
    broker.back()
    assert sweep_run()["deferred"] == 1
    run.refresh_from_db()
    assert run.status == CloseRun.Status.DONE
    assert Invoice.objects.count() == 2
    assert not DeferredTask.objects.exists()


def test_a_background_cdr_upload_with_the_broker_down_is_imported_later(
    broker, monkeypatch
):
    # given agent staff with a subscribed number, and uploads this size and
    # up imported by a task
    monkeypatch.setattr("billing.admin.ASYNC_THRESHOLD_BYTES", 100)
    staff = AgentStaffFactory()
    SubscriptionFactory(
        company=CompanyFactory(agent=staff.agent),
        number=PhoneNumberFactory(number="4008100001", status="subscribed"),
        activated_on=MARCH,
    )
    rows = "".join(
        f"BD-{i},4008100001,13800138000,,,2026-03-03 10:{i:02d}:00,61,inbound,"
        "answered\n"
        for i in range(40)
    )
    content = (
        "call_id,service_number,caller_number,caller_area,answer_number,"
        "start_time,duration_seconds,direction,status\n" + rows
    ).encode()
    client = client_for(staff)

    # when they upload a file while the broker is down
    response = client.post(
        reverse("admin:billing_cdrimport_add"),
        {"file": SimpleUploadedFile("cdrs.csv", content)},
    )

    # then the import is queued and its page warns it will start later
    imp = CdrImport.objects.get()
    assert response.status_code == 302
    assert imp.status == CdrImport.Status.QUEUED
    assert WARNING_EN in client.get(response.url).text
    assert DeferredTask.objects.get().name == "billing.cdr_import_run"
    # and once the broker is back the sweeper imports it, each call once
    broker.back()
    sweep_run()
    imp.refresh_from_db()
    assert (imp.status, imp.imported) == (CdrImport.Status.DONE, 40)
    assert CallRecord.objects.count() == 40


def test_an_invitation_with_the_broker_down_is_emailed_later(broker):
    # given a company owner using the portal in Chinese
    owner = UserFactory(role="owner", language="zh-hans")
    client = client_for(owner, "zh-hans")

    # when they invite a colleague while the broker is down
    response = client.post(
        reverse("accounts:invite"),
        {"email": "colleague@company.example.cn", "role": "member"},
    )

    # then the invitation exists and they are told, in Chinese, that the
    # email will follow
    assert response.status_code == 302
    assert Invitation.objects.filter(email="colleague@company.example.cn").exists()
    assert WARNING_ZH in client.get(response.url).text
    assert not mail.outbox
    # and once the broker is back the sweeper sends it with a working link
    broker.back()
    sweep_run()
    (message,) = mail.outbox
    assert message.to == ["colleague@company.example.cn"]
    link = re.search(r"/accounts/invitations/[^/\s]+/", message.body)[0]
    assert client_for(UserFactory()).get(link).status_code != 404


def test_an_invoice_issued_with_the_broker_down_is_emailed_once_later(broker):
    # given a company's March draft
    company = CompanyFactory()
    SubscriptionFactory(company=company, activated_on=MARCH)
    invoice = invoice_generate(company=company, period=MARCH)

    # when it is issued while the broker is down
    invoice = invoice_issue(invoice=invoice)

    # then it is issued and its email waits
    assert invoice.status == Invoice.Status.ISSUED
    email = InvoiceEmail.objects.get(invoice=invoice)
    assert email.status == InvoiceEmail.Status.PENDING
    # and once the broker is back the sweeper sends it, once
    broker.back()
    sweep_run()
    sweep_run()
    assert InvoiceEmail.objects.get(pk=email.pk).status == InvoiceEmail.Status.SENT
    assert [m.to for m in mail.outbox] == [[company.billing_email]]


def test_the_sweeper_keeps_deferred_tasks_while_the_broker_is_still_down(broker):
    # given a task recorded while the broker was down
    DeferredTask.objects.create(name="ops.sweep", args=[])

    # when the sweeper runs before the broker is back
    counts = sweep_run()

    # then the task stays recorded for the next sweep
    assert counts["deferred"] == 0
    assert DeferredTask.objects.count() == 1
