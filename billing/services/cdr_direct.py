"""A new month's calls rated while the file is read and copied straight into
the table that becomes the month's partition (the import's fast path).

The staged path (``cdr_import._PgLoader``) writes every call twice: into a
staging table, then rated into the call table. For the common file — the
month's calls of numbers with no calls stored in that month or later, in
time order — the rating needs nothing but the file: each segment's pool
goes to its inbound calls in (start, call_id) order, and a file in time
order brings them in that order. ``DirectLoads`` rates such calls block by
block as the column-wise reader (``billing.cdr_fast``) hands them over and
copies them, rated, into ``cdr_load_<import>_<YYYY_MM>``, a plain table
shaped like the call table; phase 2 of the import renames it to the month's
partition, adds the staged calls of the same month (if any) and attaches it.

Which calls go this way (the rest are staged, as before):

- the month has no partition yet (so no stored calls) and starts in 1992 or
  later (Asia/Shanghai has kept UTC+8 since 1991, the offset used here);
- the subscription has no stored calls in that month or a later one
  (``fresh_month_inputs``) and has segments that month. A call on a day
  outside every segment is rejected as the rating service rejects it.

Exactness. The rating is ``billing.rating.rate_month`` over the segments
and calendar ``fresh_month_inputs`` gives, done on whole columns:
billable minutes, the band by the local start (peak day by the calendar,
``peak_start <= time < peak_end``), the rate by direction and band, the
amount = charged × rate (exact, 4 decimals), and the pool minutes: within a
block the inbound billable calls of each segment are sorted by (start,
call_id) and take ``min(billable, pool left)`` in turn (a running sum); the
pool left carries over to the next block. That is right as long as each
block's calls of a segment all come after those of earlier blocks — true of
a file in time order, and checked: a segment whose calls come out of order
is marked, and phase 2 rates that subscription-month again in SQL. Tests
compare both paths call by call (tests/billing/test_cdr_direct.py).

What phase 2 checks under its locks before keeping the loaded calls: the
month still has no partition, and the inputs (segments, calendar) are still
those used here; otherwise the import is read again the staged way
(``DirectRedo``). So is a file whose call ids are stored already or repeat:
the staged path sorts out duplicates with line numbers, which the loaded
calls do not keep. Both are rare; the fast path never changes a result.

One COPY stays open while the file is read, fed by psycopg's writer thread,
so that PostgreSQL stores a block while the next one is read and rated (two
processes on two cores). It is closed at the reader's progress points and
whenever the connection is needed for something else.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from contextlib import ExitStack
from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from django.db import connection, transaction
from psycopg.copy import QueuedLibpqWriter

from billing import rating as core
from billing.cdr_fast import Lookup, last_day
from billing.partitions import (
    TABLE,
    create_detached,
    index_statements,
    partition_exists,
)
from billing.pg_copy import SIGNATURE, TRAILER, BinaryCopy, Field
from billing.services.rating import RatingInputs, fresh_month_inputs

logger = logging.getLogger(__name__)

Key = tuple[int, dt.date]

# Asia/Shanghai has kept UTC+8 since September 1991.
FIRST_MONTH = "1992-01-01"
UTC_OFFSET_US = 8 * 3600 * 1_000_000

TIME_FORMAT = "%Y-%m-%d %H:%M:%S"
DAY_US = 86_400_000_000
EPOCH = dt.date(1970, 1, 1)
ANSWERED, MISSED = "answered", "missed"  # results as the validator gives them

# How a loaded call is copied (binary COPY, billing.pg_copy), its id from a
# range reserved beforehand (a sequence default costs the server a third of
# a second per million rows); the load table's defaults give the period (the
# table's month), rated_at, created_at and cdr_import_id. The numerics: rate
# numeric(8, 4), amount numeric(14, 4) (three digits of 10,000 before the
# point hold more).
LOAD_FIELDS = [
    Field("id", "int8"),
    Field("company_id", "int8"),
    Field("subscription_id", "int8"),
    Field("number_id", "int8"),
    Field("start_time", "timestamptz"),
    Field("duration_seconds", "int4"),
    Field("billable_minutes", "int4"),
    Field("pool_minutes", "int4"),
    Field("charged_minutes", "int4"),
    Field("rate", "numeric", digits=1),
    Field("amount", "numeric", digits=3),
    Field("call_id", "text"),
    Field("caller_number", "text"),
    Field("caller_area", "text"),
    Field("answer_number", "text"),
    Field("direction", "choice", choices=(core.OUTBOUND, core.INBOUND)),
    Field("status", "choice", choices=(MISSED, ANSWERED)),
    Field("band", "choice", choices=(core.OFFPEAK, core.PEAK)),
]
LOAD = BinaryCopy(LOAD_FIELDS)
# Inside a caller's transaction the ids come from the sequence default:
# reserving a range there would hold the sequence's lock to the end.
LOAD_WITHOUT_ID = BinaryCopy(LOAD_FIELDS[1:])
RATE_TYPE = pa.decimal128(8, 4)
# Pairs (subscription, day) whose way is remembered between blocks.
PAIRS_KEPT = 8192
ID_CHUNK = 65536  # ids reserved at a time when the file's rows are not counted
STAGED = -2  # a subscription-month that goes the staged way
BY_DAY = -3  # a subscription-month whose days are routed one by one
OUTSIDE = -1  # a day outside every segment of its month


class DirectRedo(Exception):
    """Phase 2 cannot keep the loaded calls: read the file the staged way."""


def load_table(import_id: int, period: dt.date) -> str:
    return f"cdr_load_{import_id}_{period:%Y_%m}"


def drop_load_tables(cur, import_id: int) -> None:
    """Drop the load tables of an import (also those of an earlier, killed run)."""
    cur.execute(
        "SELECT relname FROM pg_class WHERE relkind = 'r'"
        " AND relnamespace = current_schema()::regnamespace AND relname LIKE %s",
        [f"cdr\\_load\\_{import_id}\\_%"],
    )
    for (name,) in cur.fetchall():
        cur.execute(f"DROP TABLE IF EXISTS {name}")


@dataclass
class _Segment:
    key: Key
    lo: str  # first and last day, "YYYY-MM-DD"
    hi: str
    pool: int  # minutes available to the month
    rates: tuple[Decimal, Decimal, Decimal]  # inbound peak, off-peak, outbound


@dataclass
class _PoolState:
    """What the calls loaded so far left of each segment's pool, as Arrow
    arrays indexed by segment (a block updates a thousand segments in a few
    vectorised steps, not one Python step each)."""

    pool: pa.Array = field(default_factory=lambda: pa.array([], pa.int64()))
    # pool minutes taken by the calls loaded so far
    used: pa.Array = field(default_factory=lambda: pa.array([], pa.int64()))
    # (start, call_id) of the latest taker; null before the first one
    last_start: pa.Array = field(default_factory=lambda: pa.array([], pa.int64()))
    last_id: pa.Array = field(default_factory=lambda: pa.array([], pa.string()))
    # rates by segment: inbound peak, inbound off-peak, outbound
    rates: tuple[pa.Array, ...] = ()

    def grow(self, segments: list[_Segment]) -> None:
        """Add the segments appended to ``segments`` since the last call."""
        new = segments[len(self.pool) :]
        if not new:
            return
        self.pool = pa.concat_arrays(
            [self.pool, pa.array([s.pool for s in new], pa.int64())]
        )
        self.used = pa.concat_arrays(
            [self.used, pa.repeat(pa.scalar(0, pa.int64()), len(new))]
        )
        self.last_start = pa.concat_arrays(
            [self.last_start, pa.nulls(len(new), pa.int64())]
        )
        self.last_id = pa.concat_arrays([self.last_id, pa.nulls(len(new), pa.string())])
        self.rates = tuple(
            pa.array([s.rates[i] for s in segments], RATE_TYPE) for i in range(3)
        )


@dataclass
class _Month:
    period: dt.date
    table: str
    rows: int = 0


@dataclass
class DirectLoads:
    """Phase 1 of the fast path for one import (see the module doc)."""

    import_id: int
    now: dt.datetime
    months: dict[str, _Month | None] = field(default_factory=dict)
    # (subscription id as text, period text) → its segments' indexes, or STAGED
    keys: dict[tuple[str, str], list[int] | int] = field(default_factory=dict)
    inputs: dict[Key, RatingInputs] = field(default_factory=dict)
    segments: list[_Segment] = field(default_factory=list)
    # Subscription-months whose calls came out of pool order: rated again.
    unordered: set[Key] = field(default_factory=set)
    # Subscription-months that calls were routed to (so loaded).
    routed: set[Key] = field(default_factory=set)
    state: _PoolState = field(default_factory=_PoolState)
    calendar: core.Calendar | None = None
    # How many rows the file has at most (its line ends), if known: the ids
    # reserved at once.
    rows_hint: int = 0
    _ids: tuple[int, int] = (0, 0)  # the reserved ids not used yet: [first, end)
    # Whether each load table's call ids came in increasing (byte) order, and
    # the last one so far: its rows, scanned in order, then fill the call-key
    # index from its right end, with no sort (see ``ids_in_order``).
    _ids_rising: dict[str, bool] = field(default_factory=dict)
    _last_id: dict[str, bytes] = field(default_factory=dict)
    # Whether the load tables were committed as they were written (read in
    # autocommit mode, not inside a transaction), so another connection
    # can build their indexes.
    committed: bool = False
    _peak_days: dict[int, bool] = field(default_factory=dict)  # by day since 1970
    # (subscription id|day) → segment index, STAGED or OUTSIDE (see _route)
    _pairs: pa.Array = field(default_factory=lambda: pa.array([], pa.string()))
    _pair_segments: pa.Array = field(default_factory=lambda: pa.array([], pa.int64()))
    # (subscription id|period) → segment index, STAGED or BY_DAY
    _month_routes: Lookup = field(init=False)

    def __post_init__(self):
        self._month_routes = Lookup(pa.string(), [pa.int64()], self._month_route)

    _copy: tuple[str, ExitStack, object] | None = None

    # -- routing --------------------------------------------------------------

    def take(self, calls: pa.RecordBatch) -> tuple[pa.RecordBatch | None, list]:
        """Load the calls of ``calls`` (COPY_COLUMNS, all text) that go this
        way; returns the others, for the stage, and the rejected ones as
        (line, call_id, start) — days outside every segment."""
        route = self._route(calls)
        staged = pc.equal(route, STAGED)
        outside = pc.equal(route, OUTSIDE)
        rest = calls.filter(staged) if pc.any(staged).as_py() else None
        rejected = []
        if pc.any(outside).as_py():
            gone = calls.filter(outside)
            rejected = list(
                zip(
                    gone.column("line").to_pylist(),
                    gone.column("call_id").to_pylist(),
                    gone.column("start_local").to_pylist(),
                    strict=True,
                )
            )
        direct = pc.greater_equal(route, 0)
        count = pc.sum(direct).as_py() or 0
        if count == len(calls):  # the common block: all of it
            self._load(calls, route)
        elif count:
            self._load(calls.filter(direct), route.filter(direct))
        return rest, rejected

    def _route(self, calls: pa.RecordBatch) -> pa.Array:
        """Per call: its segment's index, STAGED or OUTSIDE.

        Decided once per (subscription, month) when the month is staged or
        has one segment from its first day to its last (the common case),
        else once per (subscription, day); remembered in Arrow arrays from
        block to block, so that a block's keys are looked up in C++ and only
        new ones reach Python."""
        month = pc.dictionary_encode(
            pc.binary_join_element_wise(
                calls.column("subscription_id"), calls.column("period"), "|"
            )
        )
        keys = month.dictionary
        known = pc.index_in(keys, value_set=self._month_routes.keys)
        if known.null_count:
            new = pc.filter(keys, pc.is_null(known)).to_pylist()
            self._settle_keys({tuple(k.split("|")) for k in new})
        (by_month,) = self._month_routes(keys)
        route = pc.take(by_month, month.indices)
        by_day = pc.equal(route, BY_DAY)
        if pc.any(by_day).as_py():
            days = self._route_days(calls.filter(by_day))
            route = pc.replace_with_mask(route, by_day, days)
        return route

    def _month_route(self, key: str) -> tuple[int]:
        """STAGED, the segment of every day of the month, or BY_DAY."""
        sub, period = key.split("|")
        found = self.keys[(sub, period)]
        if found == STAGED:
            return (STAGED,)
        if len(found) == 1:
            seg = self.segments[found[0]]
            if seg.lo <= period and seg.hi >= last_day(period):
                self.routed.add(seg.key)
                return (found[0],)
        return (BY_DAY,)

    def _route_days(self, calls: pa.RecordBatch) -> pa.Array:
        """``_route`` of calls whose month has no single way: per day."""
        sub = calls.column("subscription_id")
        day = pc.utf8_slice_codeunits(calls.column("start_local"), 0, 10)
        pair = pc.dictionary_encode(pc.binary_join_element_wise(sub, day, "|"))
        values = pair.dictionary
        known = pc.index_in(values, value_set=self._pairs)
        if known.null_count:
            new = pc.filter(values, pc.is_null(known)).to_pylist()
            split = [p.split("|") for p in new]
            self._settle_keys({(s, d[:7] + "-01") for s, d in split})
            found = [self._segment_of(s, d) for s, d in split]
            self.routed.update(self.segments[i].key for i in found if i >= 0)
            if len(self._pairs) + len(new) > max(PAIRS_KEPT, 4 * len(values)):
                # keep this block's pairs only
                segments = pc.replace_with_mask(
                    pc.take(self._pair_segments, known),
                    pc.is_null(known),
                    pa.array(found, pa.int64()),
                )
                self._pairs, self._pair_segments = values, segments
            else:
                self._pairs = pa.concat_arrays([self._pairs, pa.array(new)])
                self._pair_segments = pa.concat_arrays(
                    [self._pair_segments, pa.array(found, pa.int64())]
                )
            known = pc.index_in(values, value_set=self._pairs)
        return pc.take(pc.take(self._pair_segments, known), pair.indices)

    def _segment_of(self, sub: str, day: str) -> int:
        found = self.keys[(sub, day[:7] + "-01")]
        if found == STAGED:
            return STAGED
        for index in found:
            seg = self.segments[index]
            if seg.lo <= day <= seg.hi:
                return index
        return OUTSIDE

    def _settle_keys(self, keys: set[tuple[str, str]]) -> None:
        """Decide the way of the subscription-months not seen before."""
        new = [k for k in keys if k not in self.keys]
        if not new:
            return
        self.close()  # the connection is needed
        months = {period for _sub, period in new}
        for period in months - self.months.keys():
            self.months[period] = self._month(period)
        candidates = [
            (int(sub), dt.date.fromisoformat(period))
            for sub, period in new
            if self.months[period] is not None
        ]
        inputs = fresh_month_inputs(keys=candidates, lock=False) if candidates else {}
        for sub, period in new:
            key = (int(sub), dt.date.fromisoformat(period))
            found = inputs.get(key)
            indexes = self._segments(key, found) if found else None
            self.keys[(sub, period)] = STAGED if indexes is None else indexes
            if indexes is not None:
                self.inputs[key] = found
                if self.calendar is None:
                    self.calendar = found.calendar
        self.state.grow(self.segments)

    def _month(self, period: str) -> _Month | None:
        if period < FIRST_MONTH:
            return None
        month = dt.date.fromisoformat(period)
        with connection.cursor() as cur:
            if partition_exists(cur, month):
                return None
            table = load_table(self.import_id, month)
            self.committed = not connection.in_atomic_block
            cur.execute(f"DROP TABLE IF EXISTS {table}")
            create_detached(cur, month, name=table)
            # One instant for all of the import's calls (a literal: DDL takes
            # no parameters; both values are ours).
            now = f"'{self.now.isoformat()}'::timestamptz"
            cur.execute(
                f"ALTER TABLE {table} ALTER COLUMN rated_at SET DEFAULT {now},"
                f" ALTER COLUMN created_at SET DEFAULT {now},"
                f" ALTER COLUMN cdr_import_id SET DEFAULT {int(self.import_id)},"
                f" ALTER COLUMN period SET DEFAULT '{month.isoformat()}'::date"
            )
            # A partial index that no loaded call enters (calls arrive without
            # an invoice) is made now, empty: phase 2 need not scan the month
            # for nothing. The others are built in phase 2, in sorted passes.
            for sql in index_statements(cur, month, table)[0]:
                if " WHERE " in sql:
                    cur.execute(sql)
        return _Month(month, table)

    def _segments(self, key: Key, inputs: RatingInputs) -> list[int] | None:
        """Indexes of the month's segments; None if it cannot go this way."""
        if not inputs.segments:
            return None
        if self.calendar is not None and inputs.calendar != self.calendar:
            return None  # the catalog changed while reading: staged
        indexes = []
        for seg in inputs.segments:
            tariff = seg.plan.tariff
            rates = (tariff.inbound_peak, tariff.inbound_offpeak, tariff.outbound)
            if any(r < 0 or r != r.quantize(core.RATE_QUANTUM) for r in rates):
                return None
            indexes.append(len(self.segments))
            self.segments.append(
                _Segment(
                    key=key,
                    lo=seg.start_date.isoformat(),
                    hi=seg.end_date.isoformat(),
                    pool=seg.pool_available,
                    rates=rates,
                )
            )
        return indexes

    # -- rating and loading ---------------------------------------------------

    def _load(self, calls: pa.RecordBatch, seg: pa.Array) -> None:
        direction, status = calls.column("direction"), calls.column("status")
        inbound = _one_of(direction, core.INBOUND, core.OUTBOUND)
        answered = _one_of(status, ANSWERED, MISSED)
        duration = pc.cast(calls.column("duration_seconds"), pa.int64())
        billable = pc.if_else(
            pc.and_(answered, pc.greater(duration, 0)),
            pc.divide(pc.add(duration, 59), 60),
            0,
        )
        # The local start is "YYYY-MM-DD HH:MM:SS" (canonical or made so by
        # validate), as microseconds of Shanghai wall time since 1970; it is
        # UTC+8 in every month loaded here.
        local = pc.cast(
            pc.strptime(calls.column("start_local"), format=TIME_FORMAT, unit="us"),
            pa.int64(),
        )
        peak = self._peak(local)
        taken = self._pool(calls, seg, billable, inbound, local)
        charged = pc.subtract(billable, taken)
        rate = self._rates(seg, peak, inbound)
        amount = pc.multiply(rate, pc.cast(charged, pa.decimal128(19, 0)))
        ids = self._take_ids(len(calls)) if self.committed else None
        out = pa.RecordBatch.from_pydict(
            {
                **({} if ids is None else {"id": ids}),
                "company_id": pc.cast(calls.column("company_id"), pa.int64()),
                "subscription_id": pc.cast(calls.column("subscription_id"), pa.int64()),
                "number_id": pc.cast(calls.column("number_id"), pa.int64()),
                "start_time": pc.subtract(local, UTC_OFFSET_US),
                "duration_seconds": duration,
                "billable_minutes": billable,
                "pool_minutes": taken,
                "charged_minutes": charged,
                "rate": rate,
                "amount": amount,
                "call_id": calls.column("call_id"),
                "caller_number": calls.column("caller_number"),
                "caller_area": calls.column("caller_area"),
                "answer_number": calls.column("answer_number"),
                "direction": pc.cast(inbound, pa.int8()),
                "status": pc.cast(answered, pa.int8()),
                "band": pc.cast(peak, pa.int8()),
            }
        )
        period = calls.column("period")
        months = pc.unique(period).to_pylist()
        for text in months:
            part = out if len(months) == 1 else out.filter(pc.equal(period, text))
            month = self.months[text]
            month.rows += part.num_rows
            columns = dict(zip(part.schema.names, part.columns, strict=True))
            layout = LOAD_WITHOUT_ID if ids is None else LOAD
            self._write(month.table, layout, layout.encode(columns))
            self._watch_order(month.table, columns["call_id"])

    def _watch_order(self, table: str, ids: pa.Array) -> None:
        """Note whether ``ids``, loaded into ``table`` after the earlier
        ones, keep them in increasing order."""
        if not self._ids_rising.get(table, True) or not len(ids):
            return
        ids = ids.cast(pa.binary())
        rising = pc.all(pc.greater(ids.slice(1), ids.slice(0, len(ids) - 1)))
        last = self._last_id.get(table)
        self._ids_rising[table] = (rising.as_py() is not False) and (
            last is None or ids[0].as_py() > last
        )
        self._last_id[table] = ids[len(ids) - 1].as_py()

    def ids_in_order(self, table: str) -> bool:
        """Whether the calls of ``table`` were loaded in increasing call id
        order (bytes, as the call-key table's ``COLLATE "C"`` orders them)."""
        return self._ids_rising.get(table, False)

    def _take_ids(self, count: int) -> pa.Array:
        """``count`` ids of the call table's sequence, reserved for this
        import: at first as many as the file has rows at most, then (a file
        whose rows were not counted) 65,536 at a time."""
        first, end = self._ids
        if end - first < count:
            self.close()  # the connection is needed
            wanted = self.rows_hint or ID_CHUNK
            first, end = reserve_ids(max(count, wanted))
            self.rows_hint = 0
        self._ids = (first + count, end)
        return pa.array(np.arange(first, first + count, dtype=np.int64))

    def _peak(self, local: pa.Array) -> pa.Array:
        """Whether each call is in the peak band: a peak day by the calendar,
        ``peak_start <= time of day < peak_end`` (``local``: as in _load)."""
        calendar = self.calendar
        day = pc.divide(local, DAY_US)  # days since 1970 (all after 1991)
        days = pc.dictionary_encode(day)
        peak_day = []
        for number in days.dictionary.to_pylist():
            value = self._peak_days.get(number)
            if value is None:
                date = EPOCH + dt.timedelta(days=number)
                value = self._peak_days[number] = calendar.is_peak_day(date)
            peak_day.append(value)
        time = pc.subtract(local, pc.multiply(day, DAY_US))
        return pc.and_(
            pc.take(pa.array(peak_day, pa.bool_()), days.indices),
            pc.and_(
                pc.greater_equal(time, _micros(calendar.peak_start)),
                pc.less(time, _micros(calendar.peak_end)),
            ),
        )

    def _rates(self, seg: pa.Array, peak: pa.Array, inbound: pa.Array) -> pa.Array:
        peak_rate, offpeak_rate, outbound_rate = self.state.rates
        return pc.if_else(
            inbound,
            pc.if_else(peak, pc.take(peak_rate, seg), pc.take(offpeak_rate, seg)),
            pc.take(outbound_rate, seg),
        )

    def _pool(
        self,
        calls: pa.RecordBatch,
        seg: pa.Array,
        billable: pa.Array,
        inbound: pa.Array,
        local: pa.Array,
    ) -> pa.Array:
        """Pool minutes of each call: the inbound billable calls of a segment
        take from its pool in (start, call_id) order."""
        takers = pc.and_(inbound, pc.greater(billable, 0))
        count = pc.sum(takers).as_py() or 0
        taken = pa.repeat(pa.scalar(0, pa.int64()), len(calls))
        if not count:
            return taken
        where = pc.indices_nonzero(takers)
        table = pa.table(
            {
                "seg": pc.take(seg, where),
                "start": pc.take(local, where),
                "call_id": pc.take(calls.column("call_id"), where),
                "billable": pc.take(billable, where),
            }
        )
        order = pc.sort_indices(
            table,
            sort_keys=[
                ("seg", "ascending"),
                ("start", "ascending"),
                ("call_id", "ascending"),
            ],
        )
        table = table.take(order)
        segs, start, call_id, bills = (c.combine_chunks() for c in table.columns)
        total = pc.cumulative_sum(bills)
        before_all = pc.subtract(total, bills)  # minutes of earlier takers
        first = pa.concat_arrays(
            [
                pa.array([True]),
                pc.not_equal(segs.slice(1), segs.slice(0, count - 1)),
            ]
        )
        # Per segment of this block (a group): where its takers start and end.
        starts = pc.indices_nonzero(first)
        ends = pa.concat_arrays(
            [
                pc.subtract(starts.slice(1), pa.scalar(1, pa.uint64())),
                pa.array([count - 1], pa.uint64()),
            ]
        )
        group_segs = pc.take(segs, starts)
        state = self.state
        used = pc.take(state.used, group_segs)
        # A group whose first taker is not after the segment's latest one
        # came out of pool order: the subscription-month is rated again.
        first_start = pc.take(start, starts)
        last_start = pc.take(state.last_start, group_segs)
        behind = pc.or_(
            pc.less(first_start, last_start),
            pc.and_(
                pc.equal(first_start, last_start),
                pc.less_equal(
                    pc.take(call_id, starts),
                    pc.take(state.last_id, group_segs),
                ),
            ),
        )
        behind = pc.fill_null(behind, False)
        if pc.any(behind).as_py():
            for index in pc.filter(group_segs, behind).to_pylist():
                self.unordered.add(self.segments[index].key)
        group = pc.subtract(pc.cumulative_sum(pc.cast(first, pa.int64())), 1)
        base = pc.subtract(used, pc.take(before_all, starts))
        before = pc.add(before_all, pc.take(base, group))
        left = pc.subtract(pc.take(pc.take(state.pool, group_segs), group), before)
        took = pc.max_element_wise(pc.min_element_wise(bills, left), 0)
        took_total = pc.cumulative_sum(took)
        took_at_end = pc.take(took_total, ends)
        took_before = pa.concat_arrays(
            [pa.array([0], pa.int64()), took_at_end.slice(0, len(took_at_end) - 1)]
        )
        used = pc.add(used, pc.subtract(took_at_end, took_before))
        # Scatter the groups' new state back to their segments.
        where = pc.index_in(
            pa.array(np.arange(len(state.used), dtype=np.int64)), value_set=group_segs
        )
        hit = pc.is_valid(where)
        state.used = pc.if_else(hit, pc.take(used, where), state.used)
        last_start = pc.take(pc.take(start, ends), where)
        state.last_start = pc.if_else(hit, last_start, state.last_start)
        last_id = pc.take(pc.take(call_id, ends), where)
        state.last_id = pc.if_else(hit, last_id, state.last_id)
        # Back to the calls' order: the takers in their order, the rest 0.
        back = np.empty(count, np.int64)
        back[order.to_numpy()] = np.arange(count)
        in_order = pc.take(took, back)
        return pc.replace_with_mask(taken, takers, in_order)

    # -- the COPY -------------------------------------------------------------

    def _write(self, table: str, layout: BinaryCopy, data) -> None:
        if self._copy is not None and self._copy[0] != table:
            self.close()
        if self._copy is None:
            stack = ExitStack()
            cur = stack.enter_context(connection.cursor()).cursor
            copy = stack.enter_context(
                cur.copy(
                    f"COPY {table} ({layout.columns}) FROM STDIN (FORMAT binary)",
                    writer=QueuedLibpqWriter(cur),
                )
            )
            copy.write(SIGNATURE)
            self._copy = (table, stack, copy)
        self._copy[2].write(data)

    def close(self) -> None:
        """End the open COPY (waits until PostgreSQL has stored it all)."""
        if self._copy is not None:
            _table, stack, copy = self._copy
            self._copy = None
            with stack:
                copy.write(TRAILER)

    def abandon(self) -> None:
        """End the open COPY, if the connection still can (the load tables
        are dropped next)."""
        try:
            self.close()
        except Exception:  # the connection is broken: nothing to end
            logger.warning("could not end the COPY of import %s", self.import_id)

    # -- what phase 2 needs ---------------------------------------------------

    @property
    def loaded(self) -> dict[dt.date, str]:
        """Month → load table, for the months that have calls loaded."""
        return {m.period: m.table for m in self.months.values() if m and m.rows}

    @property
    def rows(self) -> int:
        return sum(m.rows for m in self.months.values() if m)

    def loaded_keys(self) -> list[Key]:
        return sorted(self.routed)


class IndexBuild:
    """Statements (the load tables' ``CREATE INDEX``) run in a thread on a
    connection of their own, in autocommit mode; ``join`` waits and says
    whether all of them ran.

    They need a SHARE lock on tables the import's transaction only reads
    meanwhile; should one wait for a lock all the same, it gives up after
    ``LOCK_TIMEOUT`` instead of waiting for a transaction that waits for it,
    and the import runs what is left itself.
    """

    LOCK_TIMEOUT = "5s"

    def __init__(self, statements: list[str]):
        self.params = connection.get_connection_params()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(statements,))
        self.thread.start()

    def _run(self, statements: list[str]) -> None:
        try:
            conn = connection.get_new_connection(self.params)
            try:
                conn.autocommit = True
                conn.execute("SET maintenance_work_mem = '512MB'")
                # One worker beside the leader: with the call-key insert on
                # the import's connection, three processes share two cores
                # (measured: 0.1 s sooner than two workers, 0.4 s than none).
                conn.execute("SET max_parallel_maintenance_workers = 1")
                conn.execute(f"SET lock_timeout = '{self.LOCK_TIMEOUT}'")
                for sql in statements:
                    conn.execute(sql)
            finally:
                conn.close()
        except Exception as exc:  # the caller builds what is missing
            self.error = exc

    def join(self) -> bool:
        """Wait for the statements; True if all of them ran."""
        self.thread.join()
        if self.error is not None:
            logger.warning("index build on its own connection failed: %s", self.error)
        return self.error is None


def reserve_ids(count: int) -> tuple[int, int]:
    """``count`` or more ids of the call table's sequence, [first, end), that
    no other writer gets: the sequence steps over them at once, and other
    sessions' ``nextval`` waits meanwhile (ALTER SEQUENCE takes a lock that
    ``nextval`` waits for, until the transaction ends)."""
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute("SELECT pg_get_serial_sequence(%s, 'id')", [TABLE])
        sequence = cur.fetchone()[0]
        # nextval first: a sequence never used gives its start value without
        # stepping, whatever the increment.
        cur.execute("SELECT nextval(%s)", [sequence])
        first = cur.fetchone()[0]
        cur.execute(f"ALTER SEQUENCE {sequence} INCREMENT BY {int(count)}")
        cur.execute("SELECT nextval(%s)", [sequence])
        last = cur.fetchone()[0]
        cur.execute(f"ALTER SEQUENCE {sequence} INCREMENT BY 1")
    return first, last + 1


def _micros(value: dt.time) -> int:
    """Microseconds of the day at ``value``."""
    seconds = value.hour * 3600 + value.minute * 60 + value.second
    return seconds * 1_000_000 + value.microsecond


def _one_of(values: pa.Array, yes: str, no: str) -> pa.Array:
    """Where ``values`` is ``yes``; every value is ``yes`` or ``no`` (the
    validator's own spelling; anything else is a bug, not a file's fault)."""
    found = pc.equal(values, yes)
    if not pc.all(pc.or_(found, pc.equal(values, no))).as_py():
        raise ValueError(f"a value other than {yes!r} or {no!r}")
    return found
