"""Importing CDR files: encodings, bad rows, idempotency, rating, the command."""

import datetime as dt
import io
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command

from billing.models import CallRecord, CdrImport, CdrImportError
from billing.rating import Calendar
from billing.services.cdr_import import cdr_import_file
from billing.services.rating import calls_rate_many
from tests.billing import cdr_fixtures
from tests.billing.cdr_fixtures import FILES

cdr_world = cdr_fixtures.cdr_world

SH = ZoneInfo("Asia/Shanghai")
GOOD_FILES = {
    "utf8.csv": ("utf-8", "U8"),
    "utf8_bom.csv": ("utf-8-sig", "BOM"),
    "utf16le_bom.txt": ("utf-16", "U16"),
    "gbk.csv": ("gb18030", "GBK"),
    "tab.tsv": ("utf-8", "TAB"),
    "crlf.csv": ("utf-8", "CRLF"),
    "chinese_headers.csv": ("utf-8", "ZH"),
}


def ratings_snapshot():
    return {
        c.call_id: (
            c.band,
            c.billable_minutes,
            c.pool_minutes,
            c.charged_minutes,
            c.rate,
            c.amount,
        )
        for c in CallRecord.objects.all()
    }


@pytest.mark.parametrize("fast", [True, False], ids=["copy", "orm"])
@pytest.mark.parametrize("name", sorted(GOOD_FILES))
def test_every_encoding_and_layout_imports_all_five_calls(cdr_world, name, fast):
    # Given a file of five valid calls in one of the accepted layouts
    encoding, prefix = GOOD_FILES[name]
    # When it is imported
    imp = cdr_import_file(path=FILES / name, agent=cdr_world.agent)
    if not fast:  # the generic path gets the same file once more, freshly
        CallRecord.objects.all().delete()
        imp = CdrImport.objects.create(source="command", agent=cdr_world.agent)
        from billing.services.cdr_import import cdr_import_run

        with open(FILES / name, "rb") as stream:
            imp = cdr_import_run(cdr_import=imp, stream=stream, fast=False)
    # Then every call is stored with its subscription, local time and month
    assert (imp.status, imp.encoding) == ("done", encoding)
    assert (imp.imported, imp.duplicates, imp.rejected, imp.rows_read) == (5, 0, 0, 5)
    calls = {c.call_id: c for c in CallRecord.objects.all()}
    assert sorted(calls) == [f"{prefix}-00{i}" for i in range(1, 6)]
    first = calls[f"{prefix}-001"]
    assert first.subscription_id == cdr_world.sub_a1.pk
    assert first.company_id == cdr_world.sub_a1.company_id
    assert first.start_time == dt.datetime(2026, 3, 2, 9, 15, tzinfo=SH)
    assert first.period == dt.date(2026, 3, 1)
    assert first.direction == "inbound" and first.status == "answered"
    assert calls[f"{prefix}-004"].direction == "outbound"
    assert calls[f"{prefix}-003"].status == "missed"
    assert calls[f"{prefix}-005"].subscription_id == cdr_world.sub_a2.pk


def test_imported_calls_are_rated_like_the_rating_service_would(cdr_world):
    # Given an imported file
    cdr_import_file(path=FILES / "utf8.csv", agent=cdr_world.agent)
    # Then every call carries a rating …
    stored = ratings_snapshot()
    assert all(v[0] in ("peak", "offpeak") for v in stored.values())
    calendar = Calendar()
    call = CallRecord.objects.get(call_id="U8-001")
    assert call.band == calendar.band_of(call.start_time)
    assert (call.billable_minutes, call.pool_minutes, call.charged_minutes) == (
        2,
        2,
        0,
    )
    big = CallRecord.objects.get(call_id="U8-005")  # 3600 s on a 100-minute pool
    assert big.billable_minutes == 60 and big.pool_minutes == 60
    assert CallRecord.objects.filter(rated_at__isnull=True).count() == 0
    # … and re-rating every month from scratch changes nothing
    keys = {(c.subscription_id, c.period) for c in CallRecord.objects.all()}
    summary = calls_rate_many(keys=keys)
    assert summary.changed == 0
    assert ratings_snapshot() == stored


def test_pool_is_shared_in_start_order_across_imports_arriving_late(cdr_world):
    # Given a month imported in two files, the later calls first
    late = (
        "call_id,service_number,caller_number,start_time,duration_seconds,"
        "direction,status\n"
        "L-2,4008100001,13800138000,2026-03-20 10:00:00,3000,inbound,answered\n"
    )
    early = (
        "call_id,service_number,caller_number,start_time,duration_seconds,"
        "direction,status\n"
        "L-1,4008100001,13800138000,2026-03-05 10:00:00,3000,inbound,answered\n"
    )
    for text in (late, early):
        imp = CdrImport.objects.create(source="command", agent=cdr_world.agent)
        from billing.services.cdr_import import cdr_import_run

        cdr_import_run(cdr_import=imp, stream=io.BytesIO(text.encode()))
    # Then the earlier call took the pool (100 min) first, the later one the rest
    first = CallRecord.objects.get(call_id="L-1")
    second = CallRecord.objects.get(call_id="L-2")
    assert (first.pool_minutes, first.charged_minutes) == (50, 0)
    assert (second.pool_minutes, second.charged_minutes) == (50, 0)
    assert second.amount == Decimal("0")


def test_reimporting_a_file_imports_nothing_new_and_says_so(cdr_world):
    # Given a file already imported
    first = cdr_import_file(path=FILES / "utf8.csv", agent=cdr_world.agent)
    before = ratings_snapshot()
    # When it is imported again
    again = cdr_import_file(path=FILES / "utf8.csv", agent=cdr_world.agent)
    # Then nothing is added and the summary says everything was a duplicate
    assert first.imported == 5
    assert (again.imported, again.duplicates, again.rejected) == (0, 5, 0)
    assert "already imported" in again.message or "已导入" in again.message
    assert CallRecord.objects.count() == 5
    assert ratings_snapshot() == before


def test_same_calls_in_another_encoding_are_duplicates(cdr_world):
    # Given the UTF-8 file imported, then the same call ids re-sent
    cdr_import_file(path=FILES / "utf8.csv", agent=cdr_world.agent)
    text = (FILES / "utf8.csv").read_text("utf-8")
    imp = CdrImport.objects.create(source="command", agent=cdr_world.agent)
    from billing.services.cdr_import import cdr_import_run

    imp = cdr_import_run(
        cdr_import=imp, stream=io.BytesIO(text.encode("utf-16")), fast=True
    )
    assert (imp.encoding, imp.imported, imp.duplicates) == ("utf-16", 0, 5)


def test_bad_rows_are_reported_with_line_and_reason_and_good_rows_imported(
    cdr_world, settings
):
    # Given a file with a bad row of every kind, imported for agent A in English
    settings.LANGUAGE_CODE = "en"
    from django.utils import translation

    with translation.override("en"):
        imp = cdr_import_file(path=FILES / "bad_rows.csv", agent=cdr_world.agent)
    # Then the two good rows are imported and every other row is explained
    assert sorted(CallRecord.objects.values_list("call_id", flat=True)) == [
        "OK-001",
        "OK-002",
    ]
    assert CallRecord.objects.get(call_id="OK-002").start_time == dt.datetime(
        2026, 3, 3, 10, 0, tzinfo=SH
    )
    errors = {e.line_number: e for e in CdrImportError.objects.filter(cdr_import=imp)}
    expected = {
        3: "Bad start time",
        4: "Bad start time",
        5: "negative",
        6: "whole number",
        7: "Unknown direction",
        8: "Unknown result",
        9: "Missing value in column “caller_number”",
        10: "damaged by Excel",
        11: "damaged by Excel",
        12: "Unknown 400 number",
        13: "not in service on 2026-03-05",
        14: "not in service on 2026-03-05",
        15: "not a number of your companies",
        16: "more than once",
        17: "Missing value",
        19: "not a 400 number",
    }
    assert {line: e.reason for line, e in errors.items()}.keys() == expected.keys()
    for line, fragment in expected.items():
        assert fragment in errors[line].reason, (line, errors[line].reason)
    assert errors[3].raw.startswith("BAD-date,4008100001,13800138000")
    # the repeated call id is reported with its row as received (found by the
    # database on PostgreSQL, then read again from the file)
    lines = (FILES / "bad_rows.csv").read_text(encoding="utf-8").splitlines()
    assert errors[16].raw == lines[15]
    assert (imp.imported, imp.rejected, imp.duplicates, imp.rows_read) == (2, 16, 0, 18)


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("undecodable.csv", "could not be read"),
        ("missing_column.csv", "duration_seconds"),
    ],
)
def test_a_rejected_file_imports_nothing(cdr_world, name, fragment):
    from django.utils import translation

    with translation.override("en"):
        imp = cdr_import_file(path=FILES / name, agent=cdr_world.agent)
    assert imp.status == "rejected"
    assert fragment in imp.message
    assert CallRecord.objects.count() == 0
    assert CdrImportError.objects.count() == 0


def test_rejection_messages_are_translated_to_chinese(cdr_world):
    from django.utils import translation

    with translation.override("zh-hans"):
        imp = cdr_import_file(path=FILES / "missing_column.csv", agent=cdr_world.agent)
    assert "duration_seconds" in imp.message
    assert "缺少" in imp.message


def test_without_an_agent_every_agents_numbers_are_accepted(cdr_world):
    imp = cdr_import_file(path=FILES / "bad_rows.csv")
    assert CallRecord.objects.filter(call_id="BAD-agent").exists()
    assert imp.imported == 3


def test_command_prints_the_summary_and_exits_zero(cdr_world, capsys):
    out = io.StringIO()
    call_command(
        "import_cdrs",
        str(FILES / "utf8.csv"),
        str(FILES / "gbk.csv"),
        "--agent",
        str(cdr_world.agent.pk),
        stdout=out,
    )
    text = out.getvalue()
    assert "utf8.csv" in text and "gbk.csv" in text
    assert CallRecord.objects.count() == 10


def test_command_exits_non_zero_when_a_file_is_rejected(cdr_world):
    err = io.StringIO()
    with pytest.raises(SystemExit) as exit_info:
        call_command(
            "import_cdrs",
            str(FILES / "utf8.csv"),
            str(FILES / "undecodable.csv"),
            stdout=io.StringIO(),
            stderr=err,
        )
    assert exit_info.value.code == 1
    assert "undecodable.csv" in err.getvalue()
    assert CallRecord.objects.count() == 5  # the good file still imported


def test_command_reports_rejected_rows_but_exits_zero(cdr_world):
    out = io.StringIO()
    call_command(
        "import_cdrs",
        str(FILES / "bad_rows.csv"),
        "--agent",
        str(cdr_world.agent.pk),
        stdout=out,
    )
    assert "16" in out.getvalue()
    assert CdrImport.objects.get().rejected == 16


def test_ids_and_areas_with_backslashes_and_tabs_are_stored_as_sent(cdr_world):
    from billing.services.cdr_import import cdr_import_run

    text = (
        "call_id,service_number,caller_number,caller_area,start_time,"
        "duration_seconds,direction,status\n"
        '"A\\B\tC",4008100001,13800138000,"广东\\深圳\n南山",2026-03-02 09:15:00,'
        "61,inbound,answered\n"
    )
    imp = CdrImport.objects.create(source="command", agent=cdr_world.agent)
    imp = cdr_import_run(cdr_import=imp, stream=io.BytesIO(text.encode()))
    assert imp.imported == 1
    call = CallRecord.objects.get()
    assert (call.call_id, call.caller_area) == ("A\\B\tC", "广东\\深圳\n南山")


def _import_text(agent, rows):
    from billing.services.cdr_import import cdr_import_run

    text = "call_id,service_number,caller_number,start_time,duration_seconds,"
    text += "direction,status\n" + "".join(
        f"{cid},4008500001,13800138000,{start},{secs},inbound,answered\n"
        for cid, start, secs in rows
    )
    imp = CdrImport.objects.create(source="command", agent=agent)
    return cdr_import_run(cdr_import=imp, stream=io.BytesIO(text.encode()))


def _term_company(code: str):
    """A company whose 400-850-0001 is on a term plan with a 100-minute pool,
    activated 2026-01-15, with no calls yet."""
    from tests.factories import (
        CompanyFactory,
        PhoneNumberFactory,
        SubscriptionFactory,
        TermPlanFactory,
    )

    company = CompanyFactory()
    SubscriptionFactory(
        company=company,
        number=PhoneNumberFactory(number="4008500001", status="subscribed"),
        activated_on=dt.date(2026, 1, 15),
        plan=TermPlanFactory(code=code, included_minutes=100),
    )
    return company


def test_a_term_pool_spans_months_whatever_order_the_files_arrive_in(db):
    # Given a 3-year term plan with a 100-minute pool, activated mid-January
    company = _term_company("t100")
    # When February arrives first, then March (a month with no calls yet,
    # rated straight from the file), then January late
    _import_text(company.agent, [("F-1", "2026-02-10 10:00:00", 80 * 60)])
    _import_text(company.agent, [("M-1", "2026-03-10 10:00:00", 50 * 60)])
    _import_text(company.agent, [("J-1", "2026-01-20 10:00:00", 30 * 60)])

    # Then the pool is used in start order across the months of the term
    def pool(cid):
        c = CallRecord.objects.get(call_id=cid)
        return (c.pool_minutes, c.charged_minutes)

    assert pool("J-1") == (30, 0)
    assert pool("F-1") == (70, 10)
    assert pool("M-1") == (0, 50)
    # And the rating service, re-rating everything, agrees
    keys = {(c.subscription_id, c.period) for c in CallRecord.objects.all()}
    assert calls_rate_many(keys=keys).changed == 0


def test_a_month_rated_from_the_file_uses_what_earlier_months_left(db):
    company = _term_company("t100b")
    _import_text(company.agent, [("F-1", "2026-02-10 10:00:00", 80 * 60)])
    _import_text(
        company.agent,
        [("M-2", "2026-03-11 10:00:00", 15 * 60), ("M-1", "2026-03-10 10:00:00", 600)],
    )
    m1 = CallRecord.objects.get(call_id="M-1")
    m2 = CallRecord.objects.get(call_id="M-2")
    assert (m1.pool_minutes, m1.charged_minutes) == (10, 0)
    assert (m2.pool_minutes, m2.charged_minutes) == (10, 5)
    assert m2.amount == m2.rate * 5 and m2.rated_at is not None


def test_a_nul_byte_in_a_file_rejects_only_its_row(cdr_world):
    from billing.services.cdr_import import cdr_import_run

    text = (
        "call_id,service_number,caller_number,start_time,duration_seconds,"
        "direction,status\n"
        "N\x001,4008100001,13800138000,2026-03-02 09:15:00,61,inbound,answered\n"
        "N-2,4008100001,13800138000,2026-03-02 09:16:00,61,inbound,answered\n"
    )
    for fast in (True, False):
        CallRecord.objects.all().delete()
        imp = CdrImport.objects.create(source="command", agent=cdr_world.agent)
        imp = cdr_import_run(
            cdr_import=imp, stream=io.BytesIO(text.encode()), fast=fast
        )
        assert (imp.imported, imp.rejected) == (1, 1)
        assert "\x00" not in imp.errors.get().raw


def test_one_file_with_two_new_months_of_a_term_shares_the_pool(db):
    # Given a term plan with a 100-minute pool and no calls stored yet
    company = _term_company("t100c")
    # When one file brings February (80 min) and March (50 min) together
    _import_text(
        company.agent,
        [
            ("M-1", "2026-03-10 10:00:00", 50 * 60),
            ("F-1", "2026-02-10 10:00:00", 80 * 60),
        ],
    )

    # Then March only gets what February left: 20 from the pool, 30 charged
    f1 = CallRecord.objects.get(call_id="F-1")
    m1 = CallRecord.objects.get(call_id="M-1")
    assert (f1.pool_minutes, f1.charged_minutes) == (80, 0)
    assert (m1.pool_minutes, m1.charged_minutes) == (20, 30)
    keys = {(c.subscription_id, c.period) for c in CallRecord.objects.all()}
    assert calls_rate_many(keys=keys).changed == 0


@pytest.mark.parametrize("fails", [False, True], ids=["done", "failed"])
def test_garbage_collection_is_back_on_after_an_import(cdr_world, monkeypatch, fails):
    # Given an import (reading pauses the cyclic garbage collector), which
    # may fail half-way
    import gc

    from billing.services import cdr_import as service

    if fails:

        def broken(self):
            raise RuntimeError("disk on fire")

        monkeypatch.setattr(service._PgLoader, "flush", broken)
    assert gc.isenabled()
    # When the file is imported
    imp = cdr_import_file(path=FILES / "utf8.csv", agent=cdr_world.agent)
    # Then the collector runs again, whatever became of the import
    assert gc.isenabled()
    assert imp.status == ("failed" if fails else "done")
