"""The import's fast path: a new month's calls rated while the file is read
(``billing.services.cdr_direct``).

Each test checks the result against the rating service: re-rating every
imported month from the stored calls must change nothing (the calls were
rated as if they had all arrived at once), and the counts and rejections must
be those of the staged path.
"""

import datetime as dt
import random

import pytest
from django.db import connection

from billing.models import CallKey, CallRecord, CdrImport, CdrImportError
from billing.partitions import partitions_ensure
from billing.services import cdr_direct
from billing.services import cdr_import as service
from billing.services.cdr_import import cdr_import_run
from billing.services.rating import calls_rate_many
from plans.models import SubscriptionPlanPeriod
from tests.billing import cdr_fixtures
from tests.factories import (
    CallRecordFactory,
    HolidayFactory,
    PhoneNumberFactory,
    PlanFactory,
    SubscriptionFactory,
    TermPlanFactory,
    shanghai,
)

pytestmark = pytest.mark.django_db
cdr_world = cdr_fixtures.cdr_world

MAY = dt.date(2026, 5, 1)
HEADER = (
    "call_id,service_number,caller_number,caller_area,start_time,"
    "duration_seconds,direction,status"
)
TIMES = ["07:59:59", "08:00:00", "12:30:00", "19:59:59", "20:00:00", "23:59:59"]


@pytest.fixture
def spy(monkeypatch):
    """What the fast path did: calls loaded, months moved, readings again."""
    seen = {"loaded": 0, "moved": 0, "redo": 0}
    load, move = cdr_direct.DirectLoads._load, service._PgLoader._move_to_stage
    restart = service._PgLoader.restart

    def spy_load(self, calls, seg):
        seen["loaded"] += calls.num_rows
        return load(self, calls, seg)

    def spy_move(self, cur, table, keys):
        move(self, cur, table, keys)
        seen["moved"] += len(keys)

    def spy_restart(self, *, direct=True):
        seen["redo"] += not direct
        return restart(self, direct=direct)

    monkeypatch.setattr(cdr_direct.DirectLoads, "_load", spy_load)
    monkeypatch.setattr(service._PgLoader, "_move_to_stage", spy_move)
    monkeypatch.setattr(service._PgLoader, "restart", spy_restart)
    return seen


def _import(path, agent=None) -> CdrImport:
    imp = CdrImport.objects.create(source=CdrImport.Source.COMMAND, agent=agent)
    with open(path, "rb") as stream:
        return cdr_import_run(cdr_import=imp, stream=stream, fast=True)


def _stored_call(**kwargs) -> CallRecord:
    """A call stored (and rated) before the import."""
    call = CallRecordFactory(**kwargs)
    calls_rate_many(keys=[(call.subscription_id, call.period)])
    return call


def _assert_rated_as_if_all_at_once() -> None:
    keys = set(CallRecord.objects.values_list("subscription_id", "period"))
    assert not CallRecord.objects.filter(rated_at__isnull=True).exists()
    assert calls_rate_many(keys=keys).changed == 0


def _busy_world(cdr_world):
    """Two more numbers: a term plan and a small pool, with holidays."""
    HolidayFactory(date=dt.date(2026, 5, 1), kind="holiday")
    HolidayFactory(date=dt.date(2026, 5, 9), kind="workday")
    term = SubscriptionFactory(
        company=cdr_world.sub_a1.company,
        number__number="4008100003",
        activated_on=dt.date(2025, 11, 1),
        plan=TermPlanFactory(included_minutes=900),
        # a term pool partly used in April
    )
    _stored_call(
        subscription=term,
        start_time=shanghai(2026, 4, 20, 10, 0),
        duration_seconds=300 * 60,
    )
    small = SubscriptionFactory(
        company=cdr_world.sub_a2.company,
        number__number="4008100004",
        activated_on=dt.date(2026, 5, 3),
        plan=PlanFactory(included_minutes=40),
    )
    # a three-year term that ends on 15 May: two segments, two pools in May
    renewed = SubscriptionFactory(
        company=cdr_world.sub_a2.company,
        number__number="4008100005",
        activated_on=dt.date(2023, 5, 16),
        plan=TermPlanFactory(included_minutes=30),
    )
    return [cdr_world.sub_a1, cdr_world.sub_a2, term, small, renewed]


def _random_file(tmp_path, subs, seed: int, *, order: str) -> tuple:
    rng = random.Random(seed)
    rows = []
    for i in range(rng.randint(150, 400)):
        sub = rng.choice(subs)
        first = max(sub.activated_on, MAY).day
        day = rng.randint(first, 31)
        when = f"2026-05-{day:02d} {rng.choice(TIMES)}"
        if rng.random() < 0.5:
            when = (
                f"2026-05-{day:02d} {rng.randrange(24):02d}:{rng.randrange(60):02d}:00"
            )
        number = sub.number.number
        if rng.random() < 0.1:  # not canonical: checked row by row
            number = f" {number[:3]}-{number[3:6]}-{number[6:]}"
        rows.append(
            [
                f"R{seed}-{i:04d}",
                number,
                "138****8000",
                rng.choice(["广东深圳", "", "北京"]),
                when,
                str(rng.choice([0, 1, 59, 60, 61, 600, 1800, 3600])),
                rng.choice(["inbound", "inbound", "outbound", "呼入"]),
                rng.choice(["answered", "answered", "missed", "接通"]),
            ]
        )
    if order == "time":
        rows.sort(key=lambda r: (r[4], r[0]))
    elif order == "reversed":
        rows.sort(key=lambda r: (r[4], r[0]), reverse=True)
    else:
        rng.shuffle(rows)
    path = tmp_path / f"may-{seed}.csv"
    path.write_text("\n".join([HEADER, *(",".join(r) for r in rows)]) + "\n")
    return path, len(rows)


@pytest.mark.parametrize("order", ["time", "reversed", "shuffled"])
@pytest.mark.parametrize("seed", range(4))
def test_a_new_month_is_rated_while_read_as_the_rating_service_would(
    tmp_path, cdr_world, spy, monkeypatch, seed, order
):
    # given a month of calls of four numbers (a term pool that April used,
    # a pool of 40 minutes, holidays, peak boundaries, rows not in canonical
    # form), read in blocks of a few rows
    monkeypatch.setattr(service, "FAST_BLOCK_BYTES", 600 + 97 * seed)
    # and remembering the way of few (number, day) pairs between blocks
    monkeypatch.setattr(cdr_direct, "PAIRS_KEPT", 1 + 10 * seed)
    path, count = _random_file(tmp_path, _busy_world(cdr_world), seed, order=order)
    # when it is imported
    imp = _import(path, cdr_world.agent)
    # then every call went the fast way and is stored, rated exactly
    assert (imp.status, imp.imported, imp.rejected) == ("done", count, 0)
    assert spy["loaded"] == count
    assert spy["redo"] == 0
    _assert_rated_as_if_all_at_once()
    assert CallRecord.objects.filter(pool_minutes__gt=0).exists()
    assert CallRecord.objects.filter(charged_minutes__gt=0).exists()
    # calls of a number that came out of pool order were rated again in SQL
    if order == "time":
        assert spy["moved"] == 0
    if order == "reversed":
        assert spy["moved"] > 0
    # and the month is a partition with its indexes, the ids are reserved
    with connection.cursor() as cur:
        cur.execute("SELECT to_regclass('billing_callrecord_p2026_05')")
        assert cur.fetchone()[0] is not None
        cur.execute("SELECT count(*) FROM pg_class WHERE relname LIKE 'cdr_load_%%'")
        assert cur.fetchone()[0] == 0
    may = CallKey.objects.filter(period=MAY).count()
    assert may == CallRecord.objects.filter(period=MAY).count() == count


def test_one_instant_and_the_import_are_written_on_every_loaded_call(
    tmp_path, cdr_world, spy
):
    path, count = _random_file(tmp_path, [cdr_world.sub_a1], 9, order="time")
    imp = _import(path, cdr_world.agent)
    assert spy["loaded"] == count
    calls = CallRecord.objects.filter(period=MAY)
    assert set(calls.values_list("cdr_import_id", flat=True)) == {imp.pk}
    assert calls.values("created_at").distinct().count() == 1
    assert calls.values("rated_at").distinct().count() == 1
    # the starts are the instants of the file's Shanghai times
    shanghai_tz = shanghai(2026, 1, 1).tzinfo
    rows = [line.split(",") for line in path.read_text().splitlines()[1:]]
    expected = {
        r[0]: dt.datetime.fromisoformat(r[4]).replace(tzinfo=shanghai_tz) for r in rows
    }
    assert dict(calls.values_list("call_id", "start_time")) == expected


def _next_call_ids(count: int) -> list[int]:
    """What the call table's sequence gives the next writers."""
    with connection.cursor() as cur:
        cur.execute(
            "SELECT nextval(pg_get_serial_sequence('billing_callrecord', 'id'))"
            " FROM generate_series(1, %s)",
            [count],
        )
        return [row[0] for row in cur.fetchall()]


def test_reserved_ids_are_stepped_over_by_the_sequence():
    before = _next_call_ids(1)[0]
    first, end = cdr_direct.reserve_ids(1000)
    assert before < first and end - first >= 1000
    # other writers get ids after the range, one at a time again
    after = _next_call_ids(3)
    assert after[0] >= end and after == [after[0], after[0] + 1, after[0] + 2]


@pytest.fixture
def may_dropped():
    """A transactional test leaves its partition behind: drop it after."""
    yield MAY
    with connection.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS billing_callrecord_p2026_05")
        cur.execute("DELETE FROM billing_callkey")


@pytest.mark.django_db(transaction=True)
def test_loaded_calls_take_reserved_ids_block_by_block_when_rows_are_not_counted(
    tmp_path, cdr_world, spy, monkeypatch, may_dropped
):
    # given a file the encoding check does not count (UTF-16), read in blocks
    # of a few rows, ids reserved five at a time
    monkeypatch.setattr(service, "FAST_BLOCK_BYTES", 700)
    monkeypatch.setattr(cdr_direct, "ID_CHUNK", 5)
    reserved = []
    reserve = cdr_direct.reserve_ids

    def spy_reserve(count):
        reserved.append(reserve(count))
        return reserved[-1]

    monkeypatch.setattr(cdr_direct, "reserve_ids", spy_reserve)
    path, count = _random_file(tmp_path, [cdr_world.sub_a1], 12, order="time")
    path.write_bytes(path.read_text().encode("utf-16"))
    # when it is imported
    imp = _import(path, cdr_world.agent)
    # then every call was loaded with an id of a reserved range, none twice
    assert (imp.encoding, imp.imported, spy["loaded"]) == ("utf-16", count, count)
    assert len(reserved) > 1
    ids = list(CallRecord.objects.filter(period=MAY).values_list("id", flat=True))
    assert len(set(ids)) == count
    assert all(any(lo <= i < hi for lo, hi in reserved) for i in ids)
    # and the sequence goes on after them
    assert _next_call_ids(1)[0] > max(ids)


def _reserved(monkeypatch) -> list[int]:
    """How many ids each reservation asked for."""
    reserved = []
    reserve = cdr_direct.reserve_ids
    monkeypatch.setattr(
        cdr_direct, "reserve_ids", lambda n: reserved.append(n) or reserve(n)
    )
    return reserved


@pytest.mark.django_db(transaction=True)
def test_a_counted_file_reserves_its_ids_at_once(
    tmp_path, cdr_world, monkeypatch, may_dropped
):
    reserved = _reserved(monkeypatch)
    monkeypatch.setattr(service, "FAST_BLOCK_BYTES", 700)
    path, count = _random_file(tmp_path, [cdr_world.sub_a1], 13, order="time")
    imp = _import(path, cdr_world.agent)
    assert imp.imported == count
    assert len(reserved) == 1 and count <= reserved[0] <= count + 2
    _assert_rated_as_if_all_at_once()


def test_inside_a_transaction_the_ids_come_from_the_sequence_default(
    tmp_path, cdr_world, monkeypatch
):
    # (a reserved range would hold the sequence's lock to the transaction's end)
    reserved = _reserved(monkeypatch)
    path, count = _random_file(tmp_path, [cdr_world.sub_a1], 13, order="time")
    before = _next_call_ids(1)[0]
    imp = _import(path, cdr_world.agent)
    assert imp.imported == count and reserved == []
    ids = CallRecord.objects.filter(period=MAY).values_list("id", flat=True)
    assert before < min(ids) and max(ids) < _next_call_ids(1)[0]


@pytest.mark.parametrize("ids", ["rising", "shuffled"])
def test_call_ids_in_the_file_s_order_are_reserved_without_a_sort(
    tmp_path, cdr_world, spy, monkeypatch, ids
):
    # given a file in time order whose call ids rise with it, or do not,
    # read in blocks of a few rows
    monkeypatch.setattr(service, "FAST_BLOCK_BYTES", 700)
    seen = []
    in_order = cdr_direct.DirectLoads.ids_in_order
    monkeypatch.setattr(
        cdr_direct.DirectLoads,
        "ids_in_order",
        lambda self, table: seen.append(in_order(self, table)) or seen[-1],
    )
    count = 300
    names = [f"Q{i:05d}" for i in range(count)]
    if ids == "shuffled":
        random.Random(14).shuffle(names)
    rows = [
        f"{name},4008100001,138****8000,,"
        f"{dt.datetime(2026, 5, 1) + dt.timedelta(minutes=97 * i):%Y-%m-%d %H:%M:%S},"
        f"{60 * (i % 9)},inbound,answered"
        for i, name in enumerate(names)
    ]
    path = tmp_path / "may.csv"
    path.write_text("\n".join([HEADER, *rows]) + "\n")
    # when it is imported
    imp = _import(path, cdr_world.agent)
    # then the ids are reserved either way, without a sort only if they rose
    assert (imp.imported, spy["loaded"]) == (count, count)
    assert seen == [ids == "rising"]
    keys = CallKey.objects.filter(period=MAY).values_list("call_id", flat=True)
    assert set(keys) == set(names)
    _assert_rated_as_if_all_at_once()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("number", ["4008999999", "4008300001"])
def test_a_number_looked_up_in_the_database_while_a_month_loads_is_rejected(
    tmp_path, cdr_world, spy, monkeypatch, number
):
    # given calls loading over several blocks, then a call of a number the
    # import has to look up (unknown, or in stock but never subscribed),
    # while the month's COPY is open on the connection
    monkeypatch.setattr(service, "FAST_BLOCK_BYTES", 700)
    PhoneNumberFactory(number="4008300001")
    path, count = _random_file(tmp_path, [cdr_world.sub_a1], 15, order="time")
    late = f"X-1,{number},138****8000,,2026-05-31 23:00:00,60,inbound,answered"
    path.write_text(path.read_text() + late + "\n")
    # when it is imported
    imp = _import(path, cdr_world.agent)
    # then the look-up does not wait for the COPY: the call is rejected
    assert (imp.status, imp.imported, imp.rejected) == ("done", count, 1)
    assert spy["loaded"] == count
    (error,) = CdrImportError.objects.filter(cdr_import=imp)
    assert error.line_number == count + 2 and number[-4:] in error.reason


def test_a_call_on_a_day_without_a_package_is_rejected_as_on_the_staged_path(
    tmp_path, cdr_world, spy
):
    # given a subscription whose package starts on May 10 only
    sub = cdr_world.sub_a1
    SubscriptionPlanPeriod.objects.filter(subscription=sub).update(
        start_date=dt.date(2026, 5, 10)
    )
    path = tmp_path / "gap.csv"
    path.write_text(
        f"{HEADER}\n"
        "G1,4008100001,138****8000,,2026-05-09 10:00:00,61,inbound,answered\n"
        "G2,4008100001,138****8000,,2026-05-10 10:00:00,61,inbound,answered\n"
    )
    # when the file is imported
    imp = _import(path, cdr_world.agent)
    # then the call of May 9 is rejected with its line, the other stored
    assert (imp.imported, imp.rejected) == (1, 1)
    error = CdrImportError.objects.get(cdr_import=imp)
    assert error.line_number == 2
    assert "G1" in error.raw
    assert error.reason == service._outside_reason()
    assert list(CallKey.objects.values_list("call_id", flat=True)) == ["G2"]
    _assert_rated_as_if_all_at_once()


def test_stored_or_repeated_call_ids_send_the_file_the_staged_way(
    tmp_path, cdr_world, spy
):
    # given a call stored in April, and a May file that brings its id again
    # and repeats one of its own
    _stored_call(
        call_id="OLD-1",
        subscription=cdr_world.sub_a1,
        start_time=shanghai(2026, 4, 2, 9, 0),
    )
    path = tmp_path / "dups.csv"
    path.write_text(
        f"{HEADER}\n"
        "N1,4008100001,138****8000,,2026-05-04 09:00:00,61,inbound,answered\n"
        "OLD-1,4008100001,138****8000,,2026-05-04 10:00:00,61,inbound,answered\n"
        "N2,4008100001,138****8000,,2026-05-04 11:00:00,61,inbound,answered\n"
        "N1,4008100001,138****8000,,2026-05-04 12:00:00,61,inbound,answered\n"
    )
    # when it is imported
    imp = _import(path, cdr_world.agent)
    # then it was read again the staged way, which sorts the ids out
    assert spy["redo"] == 1
    assert (imp.imported, imp.duplicates, imp.rejected) == (2, 1, 1)
    assert CdrImportError.objects.get(cdr_import=imp).line_number == 5
    assert set(
        CallRecord.objects.filter(period=MAY).values_list("call_id", flat=True)
    ) == {"N1", "N2"}
    _assert_rated_as_if_all_at_once()
    # and no load table is left behind
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_class WHERE relname LIKE 'cdr_load_%%'")
        assert cur.fetchone()[0] == 0


def test_a_month_that_has_calls_already_goes_the_staged_way(tmp_path, cdr_world, spy):
    # given May's partition, with a call of another number
    partitions_ensure([MAY])
    _stored_call(subscription=cdr_world.sub_a2, start_time=shanghai(2026, 5, 20, 9, 0))
    path, count = _random_file(tmp_path, [cdr_world.sub_a1], 3, order="time")
    imp = _import(path, cdr_world.agent)
    assert imp.imported == count
    assert spy["loaded"] == 0
    _assert_rated_as_if_all_at_once()


def test_a_number_with_calls_in_a_later_month_goes_the_staged_way(
    tmp_path, cdr_world, spy
):
    # given a June call of one number: its May is not fresh
    _stored_call(subscription=cdr_world.sub_a1, start_time=shanghai(2026, 6, 2, 9, 0))
    path = tmp_path / "two.csv"
    path.write_text(
        f"{HEADER}\n"
        "L1,4008100001,138****8000,,2026-05-04 09:00:00,61,inbound,answered\n"
        "L2,4008100002,138****8000,,2026-05-14 09:00:00,61,inbound,answered\n"
    )
    imp = _import(path, cdr_world.agent)
    assert imp.imported == 2
    assert spy["loaded"] == 1  # only the other number's call
    _assert_rated_as_if_all_at_once()


def test_the_import_is_read_again_when_the_plan_changed_meanwhile(
    tmp_path, cdr_world, spy, monkeypatch
):
    # given a plan change that lands between reading and storing
    path, count = _random_file(tmp_path, [cdr_world.sub_a1], 5, order="time")
    settle = service._PgLoader._settle_direct

    def change_then_settle(self, cur):
        if self.direct is not None and self.direct.rows:
            SubscriptionPlanPeriod.objects.filter(subscription=cdr_world.sub_a1).update(
                plan=PlanFactory(included_minutes=7)
            )
        return settle(self, cur)

    monkeypatch.setattr(service._PgLoader, "_settle_direct", change_then_settle)
    imp = _import(path, cdr_world.agent)
    # then nothing is rated with the old plan
    assert spy["redo"] == 1
    assert imp.imported == count
    _assert_rated_as_if_all_at_once()


def _index_count(table: str) -> int:
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_indexes WHERE tablename = %s", [table])
        return cur.fetchone()[0]


def test_attaching_the_loaded_month_adopts_the_indexes_built_before(
    tmp_path, cdr_world, spy
):
    path, count = _random_file(tmp_path, [cdr_world.sub_a1], 11, order="time")
    _import(path, cdr_world.agent)
    assert spy["loaded"] == count
    # one of each of the call table's indexes, not a second set
    assert _index_count("billing_callrecord_p2026_05") == _index_count(
        "billing_callrecord_default"
    )
    with connection.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM pg_inherits WHERE inhparent IN (SELECT indexrelid"
            " FROM pg_index WHERE indrelid = 'billing_callrecord'::regclass)"
            " AND inhrelid IN (SELECT indexrelid FROM pg_index"
            " WHERE indrelid = 'billing_callrecord_p2026_05'::regclass)"
        )
        assert cur.fetchone()[0] == _index_count("billing_callrecord_default")


@pytest.fixture
def july_2027_dropped():
    """A transactional test leaves its partition behind: drop it after."""
    yield dt.date(2027, 7, 1)
    with connection.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS billing_callrecord_p2027_07")
        cur.execute("DELETE FROM billing_callkey")


@pytest.mark.django_db(transaction=True)
def test_in_autocommit_the_indexes_are_built_on_another_connection(
    tmp_path, cdr_world, spy, monkeypatch, july_2027_dropped, caplog
):
    # given a file of a new month, read outside any transaction (as the
    # command and the worker do), so the loaded table is committed
    built = []
    original = cdr_direct.IndexBuild._run

    def spy_run(self, statements):
        built.extend(statements)
        return original(self, statements)

    monkeypatch.setattr(cdr_direct.IndexBuild, "_run", spy_run)
    SubscriptionPlanPeriod.objects.filter(subscription=cdr_world.sub_a1).update(
        start_date=dt.date(2027, 1, 1)
    )
    cdr_world.sub_a1.__class__.objects.filter(pk=cdr_world.sub_a1.pk).update(
        activated_on=dt.date(2027, 1, 1)
    )
    lines = [
        f"J{i},4008100001,138****8000,,2027-07-{1 + i % 28:02d} 09:{i % 60:02d}:00,"
        f"{60 * (i % 7)},inbound,answered"
        for i in range(200)
    ]
    path = tmp_path / "july.csv"
    path.write_text("\n".join([HEADER, *sorted(lines, key=lambda r: r.split(",")[4])]))
    # when it is imported
    imp = _import(path, cdr_world.agent)
    # then the indexes were built by the other connection and adopted
    assert imp.imported == 200
    assert spy["loaded"] == 200
    assert any("CREATE UNIQUE INDEX" in sql for sql in built)
    assert "failed" not in caplog.text
    table = "billing_callrecord_p2027_07"
    assert _index_count(table) == _index_count("billing_callrecord_default")
    _assert_rated_as_if_all_at_once()
