"""The call table's monthly partitions and the call-key table (PostgreSQL).

Migration 0009 partitions ``billing_callrecord`` by month; ``billing_callkey``
keeps call ids unique across months through triggers; ``billing.partitions``
creates months, and the import loads a new month into its own table.
"""

import datetime as dt

import pytest
from django.db import IntegrityError, connection, transaction

from billing.models import CallKey, CallRecord, CdrImport
from billing.partitions import DEFAULT, partition_name, partitions_ensure
from billing.services.cdr_import import cdr_import_run
from tests.billing import cdr_fixtures
from tests.factories import CallRecordFactory, SubscriptionFactory, shanghai

pytestmark = pytest.mark.django_db
cdr_world = cdr_fixtures.cdr_world

MAY = dt.date(2026, 5, 1)


def _partition_of(call: CallRecord) -> str:
    with connection.cursor() as cur:
        cur.execute(
            "SELECT tableoid::regclass::text FROM billing_callrecord WHERE id = %s",
            [call.pk],
        )
        return cur.fetchone()[0]


def _indexes(table: str) -> set[str]:
    with connection.cursor() as cur:
        cur.execute("SELECT indexdef FROM pg_indexes WHERE tablename = %s", [table])
        return {row[0].split(" USING ", 1)[1] for row in cur.fetchall()}


def test_a_call_id_stored_in_one_month_cannot_be_stored_in_another():
    # given a call of March
    call = CallRecordFactory(call_id="X-1")
    assert CallKey.objects.get(call_id="X-1").period == call.period
    # when the same call id comes with a start in May
    # then the database refuses it, as a unique constraint would
    with pytest.raises(IntegrityError), transaction.atomic():
        CallRecordFactory(
            call_id="X-1",
            subscription=call.subscription,
            start_time=shanghai(2026, 5, 2, 9, 0),
        )
    assert CallRecord.objects.filter(call_id="X-1").count() == 1


def test_deleting_or_truncating_calls_frees_their_ids():
    # given two stored calls
    first = CallRecordFactory(call_id="D-1")
    CallRecordFactory(call_id="D-2", subscription=first.subscription)
    # when one is deleted, its id is free again
    first.delete()
    assert set(CallKey.objects.values_list("call_id", flat=True)) == {"D-2"}
    CallRecordFactory(call_id="D-1", subscription=first.subscription)
    # and truncating the call table frees every id
    with connection.cursor() as cur:
        cur.execute("SET CONSTRAINTS ALL IMMEDIATE")  # no pending key checks
        cur.execute("TRUNCATE billing_callrecord")
    assert not CallKey.objects.exists()


def test_the_key_table_compares_bytes_with_one_index():
    # Migration 0010: one index to maintain per imported call, in byte order
    # (code-point order, the rating rules' order of call ids).
    with connection.cursor() as cur:
        cur.execute(
            "SELECT collation_name FROM information_schema.columns"
            " WHERE table_name = 'billing_callkey' AND column_name = 'call_id'"
        )
        assert cur.fetchone()[0] == "C"
    assert _indexes("billing_callkey") == {"btree (call_id)"}
    # and the triggers still find a call's key when it changes or goes
    call = CallRecordFactory(call_id="Ä-1")
    CallRecord.objects.filter(pk=call.pk).update(call_id="Ä-2")
    assert list(CallKey.objects.values_list("call_id", flat=True)) == ["Ä-2"]
    CallRecord.objects.filter(pk=call.pk).delete()
    assert not CallKey.objects.exists()


def test_ensuring_a_month_moves_its_calls_out_of_the_default_partition():
    # given calls written before their month had a partition
    sub = SubscriptionFactory()
    may = CallRecordFactory(subscription=sub, start_time=shanghai(2026, 5, 3, 9, 0))
    june = CallRecordFactory(subscription=sub, start_time=shanghai(2026, 6, 3, 9, 0))
    assert _partition_of(may) == DEFAULT
    # when May gets its partition (twice: the second time does nothing)
    partitions_ensure([dt.date(2026, 5, 17)])
    partitions_ensure([MAY])
    # then May's call lives there, June's is still in the default partition,
    # and the partition has the call table's indexes
    assert _partition_of(may) == partition_name(MAY)
    assert _partition_of(june) == DEFAULT
    assert _indexes(partition_name(MAY)) == _indexes(DEFAULT)
    assert len(_indexes(DEFAULT)) == 4
    # and new calls of May go to it, with ids from the same sequence
    later = CallRecordFactory(subscription=sub, start_time=shanghai(2026, 5, 9, 9, 0))
    assert _partition_of(later) == partition_name(MAY)
    assert later.pk > june.pk


def test_a_months_first_file_becomes_its_partition_with_every_index(
    tmp_path, cdr_world
):
    # given a call of May already written to the default partition
    sub = cdr_world.sub_a1
    earlier = CallRecordFactory(
        call_id="EARLY",
        subscription=sub,
        start_time=shanghai(2026, 5, 2, 9, 0),
        rated_at=None,
    )
    # and a file of May for a month that has no partition
    path = tmp_path / "may.csv"
    rows = [
        f"B{i},4008100001,13800138000,2026-05-{4 + i % 20:02d} 09:00:00,"
        f"{30 + i},inbound,answered"
        for i in range(40)
    ]
    path.write_text(
        "call_id,service_number,caller_number,start_time,duration_seconds,"
        "direction,status\n" + "\n".join(rows) + "\n",
        encoding="utf-8",
    )
    imp = CdrImport.objects.create(source=CdrImport.Source.COMMAND)
    # when it is imported
    with open(path, "rb") as stream:
        imp = cdr_import_run(cdr_import=imp, stream=stream, fast=True)
    # then May is a partition holding the file's calls and the earlier call
    assert (imp.status, imp.imported) == ("done", 40)
    table = partition_name(MAY)
    assert _partition_of(earlier) == table
    calls = CallRecord.objects.filter(period=MAY)
    assert calls.count() == 41
    assert {_partition_of(c) for c in calls} == {table}
    # with the call table's indexes, ids unique, every call id reserved once
    assert _indexes(table) == _indexes(DEFAULT)
    assert len(set(calls.values_list("id", flat=True))) == 41
    assert CallKey.objects.filter(period=MAY).count() == 41
    # and the whole month is rated, the earlier call included
    assert not calls.filter(rated_at__isnull=True).exists()
    # and importing the file again imports nothing: all 40 are duplicates
    again = CdrImport.objects.create(source=CdrImport.Source.COMMAND)
    with open(path, "rb") as stream:
        again = cdr_import_run(cdr_import=again, stream=stream, fast=True)
    assert (again.imported, again.duplicates) == (0, 40)
    assert calls.count() == 41
