"""The monthly close: idempotent, safe under concurrency, with a real worker."""

import datetime as dt
import threading
from decimal import Decimal

import pytest
from celery.schedules import crontab
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection

from billing.models import CloseRun, CloseRunItem, Invoice, InvoiceLine
from billing.services.invoices import close_company, close_run_progress, close_run_start
from billing.tasks.invoices import close_company_task, close_month_task
from tests.billing.invoice_helpers import call, march_company
from tests.conftest import wait_for
from tests.factories import AgentFactory, CompanyFactory, SubscriptionFactory, shanghai

MARCH = dt.date(2026, 3, 1)


def small_companies(agent, n):
    """n companies, one ¥199 number each from 2026-03-01, two calls each.

    Each: 199.00 + inbound peak 3 min from the pool = 199.00.
    """
    companies = []
    for _ in range(n):
        sub = SubscriptionFactory(
            company=CompanyFactory(agent=agent), activated_on=MARCH
        )
        call(sub, shanghai(2026, 3, 2, 10, 0), 120)
        call(sub, shanghai(2026, 3, 3, 22, 0), 61, direction="outbound")  # 2 × 0.20
        companies.append(sub.company)
    return companies


def snapshot(agent):
    """Every invoice of the agent's companies with its lines, comparable."""
    return sorted(
        (
            inv.company_id,
            inv.period,
            inv.total,
            tuple(
                inv.lines.order_by("position").values_list(
                    "kind", "quantity", "unit_price", "amount"
                )
            ),
        )
        for inv in Invoice.objects.filter(company__agent=agent)
    )


def test_beat_runs_the_close_on_the_first_at_two():
    entry = settings.CELERY_BEAT_SCHEDULE["billing.close_month"]
    assert entry["task"] == "billing.close_month"
    assert entry["schedule"] == crontab(minute=0, hour=2, day_of_month=1)
    assert entry["options"]["expires"] > 0
    assert settings.CELERY_TIMEZONE == "Asia/Shanghai"


@pytest.mark.django_db(transaction=True)
def test_running_the_close_twice_builds_each_invoice_once():
    agent = AgentFactory()
    companies = small_companies(agent, 3)

    first = close_run_start(agent=agent, period=MARCH)  # eager: runs at commit
    once = snapshot(agent)
    second = close_run_start(agent=agent, period=MARCH)

    assert snapshot(agent) == once
    assert len(once) == 3
    # 199.00 + outbound 2 min × 0.20 = 199.40
    assert {row[2] for row in once} == {Decimal("199.40")}
    for run in (first, second):
        run.refresh_from_db()
        assert run.status == CloseRun.Status.DONE
        assert close_run_progress(run)["counts"]["draft"] == len(companies)


@pytest.mark.django_db(transaction=True)
def test_auto_issue_agent_gets_numbered_invoices_from_the_close():
    agent = AgentFactory(auto_issue_invoices=True)
    small_companies(agent, 3)

    close_month_task.delay(MARCH.isoformat())

    numbers = sorted(Invoice.objects.values_list("number", flat=True))
    assert numbers == ["HL-2026-000001", "HL-2026-000002", "HL-2026-000003"]
    assert set(Invoice.objects.values_list("status", flat=True)) == {"issued"}


@pytest.mark.django_db(transaction=True)
def test_the_close_holds_an_invoice_over_the_sanity_bound():
    agent = AgentFactory(auto_issue_invoices=True)
    company, _a, _b = march_company(agent=agent)  # ¥5,172.36, no February

    run = close_run_start(agent=agent, period=MARCH)

    invoice = Invoice.objects.get(company=company)
    assert invoice.status == Invoice.Status.DRAFT and invoice.warning
    assert run.items.get().status == CloseRunItem.Status.HELD


@pytest.mark.django_db(transaction=True)
def test_two_threads_closing_at_once_build_each_invoice_once():
    # given the reference result of a close run alone
    agent = AgentFactory()
    companies = small_companies(agent, 4)
    for company in companies:
        close_company(company=company, period=MARCH, issue=False)
    reference = snapshot(agent)
    Invoice.objects.all().delete()  # drafts only

    # when two threads run the close of every company at the same time
    barrier = threading.Barrier(2)
    errors = []

    def close_all():
        try:
            barrier.wait()
            for company in companies:
                close_company(company=company, period=MARCH, issue=True)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=close_all) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)

    # then each company has one invoice, issued once, with the same lines
    assert errors == []
    assert Invoice.objects.count() == 4
    assert snapshot(agent) == reference
    numbers = sorted(Invoice.objects.values_list("number", flat=True))
    assert numbers == [f"HL-2026-{i:06d}" for i in range(1, 5)]  # no gaps
    # per company: package fee, inbound peak (pool), outbound
    assert InvoiceLine.objects.count() == 4 * 3


@pytest.mark.django_db(transaction=True)
def test_close_task_of_a_deleted_company_returns_quietly():
    assert close_company_task(987654, MARCH.isoformat()) == "gone"


@pytest.mark.django_db(transaction=True)
def test_generate_invoices_command(capsys):
    agent = AgentFactory()
    one, two = small_companies(agent, 2)

    call_command(
        "generate_invoices", "--period", "2026-03", "--company", str(one.pk), "--issue"
    )

    assert Invoice.objects.get(company=one).number == "HL-2026-000001"
    assert not Invoice.objects.filter(company=two).exists()
    call_command("generate_invoices", "--period", "2026-03")
    assert Invoice.objects.get(company=two).status == Invoice.Status.DRAFT
    assert Invoice.objects.count() == 2
    with pytest.raises(CommandError):
        call_command("generate_invoices", "--period", "2026-13")
    with pytest.raises(CommandError):
        call_command("generate_invoices", "--period", "2026-03", "--company", "999999")


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_closing_twice_builds_each_invoice_once(celery_worker):
    # given companies with calls not yet rated
    agent = AgentFactory(auto_issue_invoices=True)
    small_companies(agent, 6)

    # when the close is enqueued twice to a real worker (2 processes)
    close_month_task.delay(MARCH.isoformat())
    close_month_task.delay(MARCH.isoformat())

    # then both runs finish and each company has one issued invoice
    wait_for(
        lambda: CloseRun.objects.filter(agent=agent, status="done").count() == 2,
        timeout=90,
    )
    assert Invoice.objects.filter(company__agent=agent).count() == 6
    assert set(Invoice.objects.values_list("status", flat=True)) == {"issued"}
    numbers = sorted(Invoice.objects.values_list("number", flat=True))
    assert numbers == [f"HL-2026-{i:06d}" for i in range(1, 7)]
    assert set(Invoice.objects.values_list("total", flat=True)) == {Decimal("199.40")}


@pytest.mark.django_db(transaction=True)
def test_a_close_batch_builds_the_hand_checked_invoice():
    # given the hand-checked March company next to two small ones
    from tests.billing.test_invoices import EXPECTED_MARCH, as_rows

    agent = AgentFactory()
    company, _a, _b = march_company(agent=agent)
    small_companies(agent, 2)
    run = close_run_start(agent=agent, period=MARCH, fan_out=False)

    # when the batch closes all three at once
    from billing.services.invoices import close_batch

    statuses = close_batch(
        run=run, company_ids=list(run.items.values_list("company_id", flat=True))
    )

    # then the invoice is line for line the hand calculation, held (¥5,172.36)
    invoice = Invoice.objects.get(company=company)
    assert as_rows(invoice.lines.order_by("position")) == EXPECTED_MARCH
    assert invoice.total == Decimal("5172.36")
    assert statuses[company.pk] == "held"
    run.refresh_from_db()
    assert run.status == CloseRun.Status.DONE
