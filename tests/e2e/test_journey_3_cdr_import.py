"""Journey 3: agent staff upload a GBK call-record file with some bad rows, watch
the import's progress bar, and download the report of the rejected rows."""

import csv
import datetime as dt
import io
import uuid

import pytest
from playwright.sync_api import expect

from billing.models import CallRecord, CdrImport
from billing.tasks.imports import cdr_import_run_task
from config.celery_app import app
from tests.e2e.helpers import admin_log_in, customer, tr
from tests.factories import (
    AgentStaffFactory,
    PhoneNumberFactory,
    SubscriptionFactory,
)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

HEADER = ",".join(
    [
        "呼叫ID",
        "400号码",
        "主叫号码",
        "主叫归属地",
        "接听号码",
        "开始时间",
        "通话时长(秒)",
        "呼叫方向",
        "呼叫结果",
    ]
)
GOOD = [
    "NOV-001,4008100001,13800138000,广东深圳,,2026-11-02 09:15:00,61,呼入,接通",
    "NOV-002,400-810-0001,02088886666,广东广州,,2026-11-02 21:00:00,120,呼入,接通",
    "NOV-003,4008100001,13700137000,上海,,2026-11-03 10:00:00,0,呼入,未接",
    "NOV-004,4008100001,13600136000,北京,,2026-11-04 15:30:00,300,呼出,接通",
]
BAD = [
    "BAD-001,4008100001,13800138000,,,2026-11-31 10:00:00,45,呼入,接通",
    "BAD-002,4008100001,13800138000,,,2026-11-05 10:00:00,-5,呼入,接通",
    "BAD-003,4009999999,13800138000,,,2026-11-05 11:00:00,45,呼入,接通",
]


@pytest.fixture
def queued_tasks():
    """Tasks go to a Redis queue of this test instead of running at once, so
    the progress page is seen while the import waits; ``take()`` receives the
    queued message from the broker."""
    queue = f"e2e-{uuid.uuid4().hex[:12]}"
    saved = (app.conf.task_always_eager, app.conf.task_default_queue)
    app.conf.task_always_eager = False
    app.conf.task_default_queue = queue

    def take():
        with app.connection_for_write() as conn:
            simple = conn.SimpleQueue(queue)
            try:
                message = simple.get(timeout=10)
                message.ack()
                return message.headers["task"], message.payload[0]
            finally:
                simple.close()

    yield take
    app.conf.task_always_eager, app.conf.task_default_queue = saved


def test_staff_upload_a_gbk_file_watch_the_progress_and_get_the_error_report(
    staff_page, language, screenshot, monkeypatch, queued_tasks
):
    page = staff_page
    t = lambda text, **values: tr(language, text, **values)  # noqa: E731
    company = customer()
    staff = AgentStaffFactory(agent=company.agent, full_name="张伟")
    SubscriptionFactory(
        company=company,
        number=PhoneNumberFactory(number="4008100001", status="subscribed"),
        activated_on=dt.date(2026, 10, 1),
    )
    content = "\r\n".join([HEADER, *GOOD[:2], *BAD, *GOOD[2:]]).encode("gbk") + b"\r\n"
    # Files above the threshold are imported by the Celery task.
    monkeypatch.setattr("billing.admin.ASYNC_THRESHOLD_BYTES", 100)

    # Given agent staff on the upload page
    admin_log_in(page, staff)
    page.goto("/admin/billing/cdrimport/")
    page.locator(".object-tools a.addlink").click()
    # When they upload the GBK file
    page.get_by_label(t("CDR file")).set_input_files(
        files=[{"name": "电信话单-11月.csv", "mimeType": "text/csv", "buffer": content}]
    )
    screenshot("upload", of=page)
    page.locator("input[type=submit]").click()

    # Then the import waits for the worker, its page shows the progress bar
    page.wait_for_url("**/cdrimport/*/change/")
    imp = CdrImport.objects.get()
    assert imp.status == CdrImport.Status.QUEUED
    bar = page.get_by_role("progressbar", name=t("Import progress"))
    expect(bar).to_have_attribute("value", "0")
    expect(page.locator(".messagelist")).to_contain_text(
        t("The file is being imported in the background.")
    )
    screenshot("queued", of=page)

    # When the worker takes the task from the broker and runs it
    task, args = queued_tasks()
    assert (task, args) == ("billing.cdr_import_run", [imp.pk])
    cdr_import_run_task.apply(args=args)

    # Then the page (polling) reaches 100% and shows the summary
    expect(bar).to_have_attribute("value", "100", timeout=10_000)
    summary = page.locator("#cdr-import table").first
    expect(summary.locator("[data-field=imported]")).to_have_text("4")
    expect(summary.locator("[data-field=rejected]")).to_have_text("3")
    expect(summary).to_contain_text("(gb18030)")
    assert CallRecord.objects.filter(company=company).count() == 4
    rejected = page.locator("#cdr-import table").nth(1)
    expect(rejected.locator("tbody tr")).to_have_count(3)
    screenshot("done", of=page)

    # When they download the report of the rejected rows
    with page.expect_download() as info:
        page.get_by_role("link", name=t("Download the rejected rows (CSV)")).click()
    download = info.value
    body = download.path().read_bytes()

    # Then it lists each bad row with its line, reason and the row as sent
    assert download.suggested_filename == f"cdr-import-{imp.pk}-rejected-rows.csv"
    assert body.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    assert rows[0] == [t("line"), t("reason"), t("row as received")]
    assert [(int(r[0]), r[2]) for r in rows[1:]] == [
        (4, BAD[0]),
        (5, BAD[1]),
        (6, BAD[2]),
    ]
    assert all(r[1] for r in rows[1:])
