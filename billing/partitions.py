"""The call table's monthly partitions (PostgreSQL; migration 0009).

``billing_callrecord`` is partitioned by ``period``: one partition per billing
month, ``billing_callrecord_pYYYY_MM``, plus a default partition that takes
rows written before their month's partition exists (fixtures, the embedded
demo); creating the month moves them in.

Two ways a month comes to exist:

- ``partitions_ensure`` creates empty months (writers that insert a few rows
  through the parent: API batches, a late file for a month already loaded);
- ``MonthLoad`` is the import's bulk path for a month that has no partition
  yet (its first file): the calls are inserted into a table of their own,
  without indexes, and ``attach`` makes it the month's partition, which
  builds each index in one sorted pass instead of one insertion per row.

Both create a plain table and attach it, rather than ``CREATE TABLE …
PARTITION OF``: attaching takes a SHARE UPDATE EXCLUSIVE lock on the call
table, so bill pages and other imports carry on, where creating a partition
directly takes an ACCESS EXCLUSIVE lock. A CHECK constraint equal to the
month's bounds spares ATTACH its validating scan.

Other databases have one plain call table: everything here is a no-op there.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from django.db import connection, transaction

TABLE = "billing_callrecord"
DEFAULT = f"{TABLE}_default"
# Serialises the creation of partitions (advisory lock key).
PARTITION_LOCK = 400_400_003


def month_of(day: dt.date) -> dt.date:
    return day.replace(day=1)


def month_bounds(period: dt.date) -> tuple[dt.date, dt.date]:
    first = month_of(period)
    return first, month_of(first + dt.timedelta(days=32))


def partition_name(period: dt.date) -> str:
    return f"{TABLE}_p{period:%Y_%m}"


def partitioned() -> bool:
    return connection.vendor == "postgresql"


def partition_exists(cur, period: dt.date) -> bool:
    cur.execute("SELECT to_regclass(%s) IS NOT NULL", [partition_name(period)])
    return cur.fetchone()[0]


def create_detached(cur, period: dt.date, name: str | None = None) -> str:
    """A plain table shaped like the call table, checked to the month: the
    month's partition-to-be (named ``name`` until it is renamed to the
    partition's name)."""
    name = name or partition_name(period)
    lo, hi = month_bounds(period)
    cur.execute(
        f"CREATE TABLE {name} (LIKE {TABLE} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"
    )
    cur.execute(
        f"ALTER TABLE {name} ADD CONSTRAINT {partition_name(period)}_bounds"
        f" CHECK (period >= DATE '{lo}' AND period < DATE '{hi}')"
    )
    # The parent's identity is not inherited by LIKE: ids come from the same
    # sequence, so they stay unique across months. (Named once here: a
    # default of nextval(pg_get_serial_sequence(…)) looks the sequence up
    # per row, 5 s of a million-row load.)
    cur.execute("SELECT pg_get_serial_sequence(%s, 'id')", [TABLE])
    sequence = cur.fetchone()[0]
    cur.execute(
        f"ALTER TABLE {name} ALTER COLUMN id SET DEFAULT nextval(%s::regclass)",
        [sequence],
    )
    return name


def _attach(cur, period: dt.date) -> None:
    """Move the month's rows out of the default partition, then attach."""
    name = partition_name(period)
    lo, hi = month_bounds(period)
    cur.execute(
        f"WITH moved AS (DELETE FROM {DEFAULT}"  # noqa: S608
        " WHERE period >= %s AND period < %s RETURNING *)"
        f" INSERT INTO {name} SELECT * FROM moved",
        [lo, hi],
    )
    cur.execute(
        f"ALTER TABLE {TABLE} ATTACH PARTITION {name}"
        f" FOR VALUES FROM ('{lo}') TO ('{hi}')"
    )
    cur.execute(f"ALTER TABLE {name} DROP CONSTRAINT {name}_bounds")
    # The defaults a load gave its calls (billing.services.cdr_direct too).
    cur.execute(
        f"ALTER TABLE {name} ALTER COLUMN id DROP DEFAULT,"
        " ALTER COLUMN rated_at DROP DEFAULT, ALTER COLUMN created_at DROP DEFAULT,"
        " ALTER COLUMN cdr_import_id DROP DEFAULT, ALTER COLUMN period DROP DEFAULT"
    )


def partitions_ensure(periods: Iterable[dt.date]) -> None:
    """Create the month partitions of ``periods`` that do not exist yet."""
    if not partitioned():
        return
    months = sorted({month_of(p) for p in periods})
    if not months:
        return
    with transaction.atomic(), connection.cursor() as cur:
        missing = [p for p in months if not partition_exists(cur, p)]
        if not missing:
            return
        cur.execute("SELECT pg_advisory_xact_lock(%s)", [PARTITION_LOCK])
        for period in missing:
            if not partition_exists(cur, period):  # another writer's meanwhile
                create_detached(cur, period)
                _attach(cur, period)


def index_statements(cur, period: dt.date, table: str) -> tuple[list[str], list[str]]:
    """What gives ``table`` (the month's partition-to-be) the call table's
    indexes, so that attaching it adopts them instead of building them:
    ``CREATE INDEX`` of each partitioned index of the call table (a SHARE
    lock: the table stays readable meanwhile), and then the statement that
    makes the unique one the primary key (ATTACH adopts a key's index only
    with its constraint; an ACCESS EXCLUSIVE lock, for a moment). Named after
    the month's partition, ``IF NOT EXISTS``: running them again is harmless.
    """
    part = partition_name(period)
    cur.execute(
        "SELECT c.relname, pg_get_indexdef(i.indexrelid), i.indisprimary"
        " FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
        " WHERE i.indrelid = %s::regclass ORDER BY c.relname",
        [TABLE],
    )
    builds, keys = [], []
    for name, definition, primary in cur.fetchall():
        # "CREATE [UNIQUE] INDEX name ON ONLY public.billing_callrecord USING …"
        head, using = definition.split(" USING ", 1)
        unique = "UNIQUE " if head.startswith("CREATE UNIQUE ") else ""
        index = f"{part}_pkey" if primary else f"{part}_{name}"[:63]
        builds.append(
            f"CREATE {unique}INDEX IF NOT EXISTS {index} ON {table} USING {using}"
        )
        if primary:
            keys.append(
                f"ALTER TABLE {table} ADD CONSTRAINT {index}"
                f" PRIMARY KEY USING INDEX {index}"
            )
    return builds, keys


class MonthLoad:
    """A month that has no partition yet, loaded in bulk (see the module doc).

    ``MonthLoad.begin`` creates the table under the partition lock, which it
    holds until the transaction ends (call it inside one); insert the month's
    calls into ``table``, then ``attach``.
    """

    def __init__(self, period: dt.date):
        self.period = month_of(period)
        self.table = partition_name(self.period)

    @classmethod
    def begin(cls, cur, periods: Iterable[dt.date]) -> dict[dt.date, MonthLoad]:
        """Loads for those of ``periods`` that have no partition."""
        months = sorted({month_of(p) for p in periods})
        if not months or not partitioned():
            return {}
        cur.execute("SELECT pg_advisory_xact_lock(%s)", [PARTITION_LOCK])
        loads = {}
        for period in months:
            if not partition_exists(cur, period):
                load = cls(period)
                create_detached(cur, period)
                loads[period] = load
        return loads

    @classmethod
    def adopt(cls, cur, period: dt.date, table: str) -> MonthLoad:
        """The load of a table filled beforehand (``create_detached`` with
        another name). Call it under the partition lock, once it is known
        that the month has no partition."""
        load = cls(period)
        cur.execute(f"ALTER TABLE {table} RENAME TO {load.table}")
        return load

    def attach(self, cur) -> None:
        _attach(cur, self.period)
