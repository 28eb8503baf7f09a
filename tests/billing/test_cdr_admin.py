"""The back office: CDR upload, progress page, error report, Celery path, keys."""

import csv
import io

from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from billing.models import AgentApiKey, CallRecord, CdrImport
from billing.tasks.imports import cdr_import_run_task
from tests.billing import cdr_fixtures
from tests.billing.cdr_fixtures import FILES
from tests.factories import UserFactory

cdr_world = cdr_fixtures.cdr_world
UPLOAD = "admin:billing_cdrimport_add"


def login(user) -> Client:
    client = Client(HTTP_ACCEPT_LANGUAGE="en")
    client.force_login(user)
    return client


def upload(client, name, content=None, **data):
    content = content if content is not None else (FILES / name).read_bytes()
    return client.post(
        reverse(UPLOAD), {"file": SimpleUploadedFile(name, content), **data}
    )


def test_agent_staff_upload_a_small_file_and_see_its_summary(cdr_world, settings):
    staff = login(cdr_world.staff)
    # Given the upload page
    page = staff.get(reverse(UPLOAD))
    assert page.status_code == 200
    assert b'type="file"' in page.content
    assert b'name="agent"' not in page.content  # staff import for their agent
    # When a small GBK file is uploaded
    response = upload(staff, "gbk.csv")
    # Then it is imported at once and the import's page shows the summary
    imp = CdrImport.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse(
        "admin:billing_cdrimport_change", args=[imp.pk]
    )
    assert (imp.status, imp.source, imp.imported) == ("done", "admin", 5)
    assert (imp.agent, imp.created_by) == (cdr_world.agent, cdr_world.staff)
    assert imp.file.path.startswith(str(settings.MEDIA_ROOT))
    assert CallRecord.objects.count() == 5
    detail = staff.get(response["Location"])
    assert detail.status_code == 200
    text = detail.content.decode()
    assert 'value="100"' in text and "gbk.csv" in text
    assert "js/import-progress.js" in text
    assert "<script>" not in text.replace(" ", "")  # no inline script (CSP)


def test_staff_upload_rejects_rows_of_other_agents_and_offers_the_error_csv(
    cdr_world,
):
    staff = login(cdr_world.staff)
    bad = (FILES / "bad_rows.csv").read_bytes() + (
        b'=HYPERLINK("http://x"),4008100001,13800138000,,,2026-03-03 10:00:00,'
        b"-1,inbound,answered\n"
    )
    response = upload(staff, "bad_rows.csv", bad)
    imp = CdrImport.objects.get()
    assert imp.rejected == 17 and imp.imported == 2
    assert not CallRecord.objects.filter(call_id="BAD-agent").exists()
    detail = staff.get(response["Location"]).content.decode()
    errors_url = reverse("admin:billing_cdrimport_errors", args=[imp.pk])
    assert errors_url in detail
    assert "not a number of your companies" in detail
    # The error report is UTF-8 with a BOM, one row per rejected line
    report = staff.get(errors_url)
    assert report.status_code == 200
    body = b"".join(report.streaming_content)
    assert body.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    assert rows[0] == ["line", "reason", "row as received"]
    assert [int(r[0]) for r in rows[1:]] == sorted(int(r[0]) for r in rows[1:])
    assert len(rows) == 1 + 17
    assert rows[-1][2].startswith("'=HYPERLINK")  # formula escaped


def test_another_agents_staff_cannot_see_the_import(cdr_world):
    upload(login(cdr_world.staff), "utf8.csv")
    imp = CdrImport.objects.get()
    other = login(cdr_world.other_staff)
    for name in ("change", "progress", "errors"):
        url = reverse(f"admin:billing_cdrimport_{name}", args=[imp.pk])
        assert other.get(url).status_code == 404, name
    listing = other.get(reverse("admin:billing_cdrimport_changelist"))
    assert "utf8.csv" not in listing.content.decode()


def test_a_superuser_may_import_for_any_agent(cdr_world):
    admin_user = UserFactory(company=None, role="", is_staff=True, is_superuser=True)
    client = login(admin_user)
    assert b'name="agent"' in client.get(reverse(UPLOAD)).content
    upload(client, "bad_rows.csv", agent=str(cdr_world.other_agent.pk))
    imp = CdrImport.objects.get()
    assert imp.agent == cdr_world.other_agent
    # Only agent B's number is B's: A's numbers are refused
    assert list(CallRecord.objects.values_list("call_id", flat=True)) == ["BAD-agent"]


def test_a_rejected_upload_says_why_and_imports_nothing(cdr_world):
    staff = login(cdr_world.staff)
    response = upload(staff, "undecodable.csv")
    imp = CdrImport.objects.get()
    assert imp.status == "rejected"
    assert not CallRecord.objects.exists()
    assert "could not be read" in staff.get(response["Location"]).content.decode()


def test_a_large_file_is_imported_by_the_task_with_a_progress_page(
    cdr_world, monkeypatch, django_capture_on_commit_callbacks
):
    monkeypatch.setattr("billing.admin.ASYNC_THRESHOLD_BYTES", 100)
    staff = login(cdr_world.staff)
    # When a file above the threshold is uploaded
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = upload(staff, "utf16le_bom.txt")
    imp = CdrImport.objects.get()
    # Then it waits for the worker and its page refreshes itself
    assert imp.status == "queued" and len(callbacks) == 1
    page = staff.get(response["Location"]).content.decode()
    assert '<meta http-equiv="refresh"' in page
    assert 'data-running="1"' in page
    progress_url = reverse("admin:billing_cdrimport_progress", args=[imp.pk])
    assert staff.get(progress_url).json()["running"] is True
    # When the task runs (eagerly here)
    callbacks[0]()
    # Then the import is done and the progress endpoint says so
    data = staff.get(progress_url).json()
    assert (data["status"], data["percent"], data["imported"]) == ("done", 100, 5)
    assert data["processed_bytes"] == data["total_bytes"] > 0
    assert CallRecord.objects.count() == 5


def test_the_task_returns_quietly_when_the_import_is_gone(db):
    assert cdr_import_run_task(987654) is None


def test_the_task_does_not_run_a_finished_import_twice(cdr_world):
    upload(login(cdr_world.staff), "utf8.csv")
    imp = CdrImport.objects.get()
    cdr_import_run_task(imp.pk)
    imp.refresh_from_db()
    assert (imp.imported, imp.duplicates) == (5, 0)


def test_staff_create_a_key_for_their_agent_see_it_once_and_revoke_it(cdr_world):
    staff = login(cdr_world.staff)
    add = reverse("admin:billing_agentapikey_add")
    assert b'name="agent"' not in staff.get(add).content
    response = staff.post(add, {"name": "电信推送"}, follow=True)
    key = AgentApiKey.objects.get()
    assert key.agent == cdr_world.agent
    text = response.content.decode()
    assert f"h4a_{key.prefix}_" in text  # the raw key, shown once
    assert key.key_hash not in text
    again = staff.get(reverse("admin:billing_agentapikey_change", args=[key.pk]))
    assert f"h4a_{key.prefix}_…" in again.content.decode()
    staff.post(
        reverse("admin:billing_agentapikey_changelist"),
        {"action": "revoke_selected", "_selected_action": [key.pk]},
    )
    key.refresh_from_db()
    assert key.revoked_at is not None
    # Another agent's staff are told it does not exist (Django's redirect)
    other = login(cdr_world.other_staff)
    refused = other.get(reverse("admin:billing_agentapikey_change", args=[key.pk]))
    assert refused.status_code == 302 and refused["Location"] == reverse("admin:index")
