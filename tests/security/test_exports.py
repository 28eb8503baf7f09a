"""Every CSV the project serves is formula-safe, and callers are masked.

Instead of listing the exports, the test requests every route (portal, API
and back office) with real ids and checks each response that is a CSV
file, so a new export that bypasses ``billing.csv_export`` fails here. The
data carries formula-looking text in every free-text place a CSV shows.
"""

import csv
import io
import json

import pytest
from django.test import Client

from billing.models import CallRecord, CdrImportError
from tests.security.test_safe_methods import _catalog_and_other_objects, _urls
from tests.security.walk import build_world, is_api

pytestmark = pytest.mark.django_db

FULL_CALLER = "13812345678"
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


@pytest.fixture
def world():
    world = build_world()
    CallRecord.objects.filter(company=world.company).update(
        caller_number=FULL_CALLER, caller_area='=HYPERLINK("http://x")'
    )
    return world


def _csv_responses(world):
    owner = Client()
    owner.force_login(world.owner)
    staff = Client()
    staff.force_login(world.staff)
    objects = _catalog_and_other_objects(world)
    CdrImportError.objects.create(
        cdr_import=objects["billing.CdrImport"],
        line_number=2,
        raw="@SUM(A1:A9),-2+3,=cmd|' /C calc'!A0",
        reason="+86 unknown number",
    )
    found = {}
    for route, url in _urls(world):
        if is_api(route):
            continue
        client = staff if route.route.startswith("admin/") else owner
        response = client.get(url)
        if response.get("Content-Type", "").startswith("text/csv"):
            body = (
                b"".join(response.streaming_content)
                if response.streaming
                else (response.content)
            )
            found[url] = body
    return found


def test_every_csv_escapes_formulas_and_masks_callers(world):
    files = _csv_responses(world)

    # The invoice lines, invoice calls, line calls and rejected-rows exports.
    assert len(files) >= 4, sorted(files)
    for url, body in files.items():
        assert body.startswith(b"\xef\xbb\xbf"), f"{url}: no BOM for Excel"
        text = body.decode("utf-8-sig")
        assert FULL_CALLER not in text, f"{url}: a caller number is not masked"
        for row in csv.reader(io.StringIO(text)):
            for cell in row:
                assert not (cell.startswith(FORMULA_STARTS) and not _is_number(cell)), (
                    f"{url}: cell {cell!r} would be evaluated by a spreadsheet"
                )


def test_callers_are_masked_on_the_calls_page_and_in_the_api(world):
    owner = Client()
    owner.force_login(world.owner)
    api = Client(HTTP_AUTHORIZATION=f"Bearer {world.raw_api_key}")

    page = owner.get(f"/billing/lines/{world.usage_line.pk}/calls/")
    data = api.get(f"/api/v1/lines/{world.usage_line.pk}/calls/")

    assert page.status_code == data.status_code == 200
    assert FULL_CALLER not in page.content.decode()
    assert "138****5678" in page.content.decode()
    callers = {c["caller"] for c in json.loads(data.content)["results"]}
    assert callers == {"138****5678"}
    assert FULL_CALLER not in data.content.decode()
