"""Set-based rating of staged calls in PostgreSQL (the import's common case).

``rate_staged`` rates, in one ``INSERT … SELECT``, the staged calls of the
subscription-months whose segments it is given, exactly as the pure core
``billing.rating.rate_month`` would with those segments and that calendar
(proved by tests/billing/test_cdr_import_sql.py against the core):

- band from the local start (Asia/Shanghai): a peak day is a make-up working
  day, or a weekday in the catalog's peak weekdays that is not a statutory
  holiday; peak when ``peak_start <= time < peak_end``;
- billable = ``ceil(duration / 60)`` for an answered call with duration > 0;
- the pool of each segment goes to its inbound calls in (start, call_id)
  order; a call takes ``min(billable, pool left)`` and the pool left before a
  call is ``max(0, available − billable of the earlier inbound calls)`` — a
  running sum, i.e. a window function; call ids compare by code point
  (``COLLATE "C"``) like Python strings;
- charged = billable − pool; the rate by direction and band; amount =
  charged × rate (exact, 4 decimals).

The segments (pools, tariffs, date ranges) come from the rating service's
own loaders (``billing.services.rating``), so proration and term logic stay
in ``billing/rating.py``. The caller decides which months are safe to rate
here: months with no stored calls (hence no frozen calls) whose pool does
not depend on other staged months. A month with a staged call outside all
of its segments is left out (the caller's generic path rejects such calls).

Two steps, so the import can write each call once: ``SqlRating.prepare``
loads the segments and the calendar and settles which months it rates;
``SqlRating.insert_calls`` writes those months' calls, rated, straight into
the call table (``rate_into`` writes the ratings alone to a table, which is
what the tests compare with the core). Both run the same ``SELECT``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from billing import rating as core

Key = tuple[int, dt.date]


def _copy_rows(cur, table: str, columns: str, rows: list[tuple]) -> None:
    with cur.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


# The staged call with its rating: every column of the stage (``s.*``) plus
# billable, taken (pool minutes), band and rate. The window runs over each
# segment's inbound calls in (start, call_id) order; the local start orders
# them as the instant does (Asia/Shanghai has kept one offset since 1991),
# without a time-zone conversion per row.
_RATED_SELECT = (
    "SELECT *, CASE WHEN direction = 'inbound' THEN GREATEST(0, LEAST(billable,"
    "  pool - (SUM(billable) OVER w - billable))) ELSE 0 END AS taken"
    " FROM (SELECT s.*, g.seg, g.pool, b.band,"
    "  CASE WHEN s.status = 'answered' AND s.duration_seconds > 0"
    "   THEN (s.duration_seconds::bigint + 59) / 60 ELSE 0 END AS billable,"
    "  CASE WHEN s.direction = 'outbound' THEN g.r_out"
    "   WHEN b.band = 'peak' THEN g.r_peak ELSE g.r_offpeak END AS rate"
    "  FROM {stage} s"
    "  JOIN {segs} g ON g.subscription_id = s.subscription_id"
    "   AND g.period = s.period AND s.start_local::date BETWEEN g.lo AND g.hi"
    "  LEFT JOIN {days} h ON h.day = s.start_local::date"
    "  CROSS JOIN LATERAL (SELECT CASE WHEN"
    "   (CASE h.kind WHEN %(holiday)s THEN false WHEN %(workday)s THEN true"
    "    ELSE extract(isodow FROM s.start_local)::int = ANY(%(weekdays)s)"
    "    END)"
    "   AND s.start_local::time >= %(peak_start)s"
    "   AND s.start_local::time < %(peak_end)s"
    "   THEN 'peak' ELSE 'offpeak' END AS band) b"
    "  WHERE {where}"
    " ) c"
    " WINDOW w AS (PARTITION BY seg, direction"
    '  ORDER BY start_local, call_id COLLATE "C" ROWS UNBOUNDED PRECEDING)'
)

# Call-table columns an import writes, and the stage/rating expressions that
# fill them for the months rated here.
CALL_COLUMNS = (
    "call_id, company_id, subscription_id, number_id, caller_number,"
    " caller_area, answer_number, start_time, period, duration_seconds,"
    " direction, status, band, billable_minutes, pool_minutes,"
    " charged_minutes, rate, amount, rated_at, created_at, cdr_import_id"
)
_CALL_VALUES = (
    "call_id, company_id, subscription_id, number_id, caller_number,"
    " caller_area, answer_number, start_local AT TIME ZONE 'Asia/Shanghai',"
    " period, duration_seconds, direction, status, band, billable, taken,"
    " billable - taken, rate, (billable - taken) * rate,"
    " %(rated_at)s, %(created_at)s, %(import_id)s"
)


@dataclass
class SqlRating:
    """The months of a stage rated in SQL (see the module doc)."""

    stage: str
    suffix: str
    keys: set[Key] = field(default_factory=set)
    params: dict = field(default_factory=dict)

    @property
    def segs(self) -> str:
        return f"cdr_sql_segments_{self.suffix}"

    @property
    def days(self) -> str:
        return f"cdr_sql_days_{self.suffix}"

    @property
    def done(self) -> str:
        """A table of the months rated here: (subscription_id, period)."""
        return f"cdr_sql_done_{self.suffix}"

    @classmethod
    def prepare(
        cls,
        cur,
        *,
        stage: str,
        segments: Mapping[Key, Sequence[core.Segment]],
        calendar: core.Calendar,
        suffix: str,
    ) -> SqlRating:
        """Load the segments; the result's ``keys`` are the months it rates."""
        self = cls(stage=stage, suffix=suffix)
        self.params = {
            "holiday": core.HOLIDAY,
            "workday": core.WORKDAY,
            "weekdays": sorted(calendar.peak_weekdays),
            "peak_start": calendar.peak_start,
            "peak_end": calendar.peak_end,
        }
        cur.execute(f"DROP TABLE IF EXISTS {self.segs}, {self.days}, {self.done}")
        cur.execute(
            f"CREATE TEMP TABLE {self.segs} (seg integer PRIMARY KEY,"
            " subscription_id bigint, period date, lo date, hi date, pool bigint,"
            " r_peak numeric(8,4), r_offpeak numeric(8,4), r_out numeric(8,4))"
        )
        cur.execute(f"CREATE TEMP TABLE {self.days} (day date PRIMARY KEY, kind text)")
        cur.execute(
            f"CREATE TEMP TABLE {self.done} (subscription_id bigint, period date,"
            " PRIMARY KEY (subscription_id, period))"
        )
        rows = []
        for (sub_id, period), segs in segments.items():
            for seg in segs:
                tariff = seg.plan.tariff
                rows.append(
                    (
                        len(rows) + 1,
                        sub_id,
                        period,
                        seg.start_date,
                        seg.end_date,
                        seg.pool_available,
                        tariff.inbound_peak,
                        tariff.inbound_offpeak,
                        tariff.outbound,
                    )
                )
        if not rows:
            return self
        _copy_rows(
            cur,
            self.segs,
            "seg, subscription_id, period, lo, hi, pool, r_peak, r_offpeak, r_out",
            rows,
        )
        _copy_rows(cur, self.days, "day, kind", sorted(calendar.holidays.items()))
        cur.execute(f"CREATE INDEX ON {self.segs} (subscription_id, period)")
        cur.execute(f"ANALYZE {self.segs}")
        cur.execute(f"ANALYZE {self.days}")
        # Months with a staged call outside every segment: not rated here.
        cur.execute(
            f"DELETE FROM {self.segs} g USING ("  # noqa: S608
            f" SELECT DISTINCT s.subscription_id, s.period FROM {stage} s"
            f" WHERE EXISTS (SELECT 1 FROM {self.segs} k"
            "  WHERE k.subscription_id = s.subscription_id AND k.period = s.period)"
            f" AND NOT EXISTS (SELECT 1 FROM {self.segs} k"
            "  WHERE k.subscription_id = s.subscription_id AND k.period = s.period"
            "  AND s.start_local::date BETWEEN k.lo AND k.hi)) bad"
            " WHERE g.subscription_id = bad.subscription_id AND g.period = bad.period"
        )
        cur.execute(
            f"INSERT INTO {self.done} SELECT DISTINCT subscription_id, period"  # noqa: S608
            f" FROM {self.segs}"
        )
        cur.execute(f"ANALYZE {self.done}")
        cur.execute(f"SELECT subscription_id, period FROM {self.done}")  # noqa: S608
        self.keys = {(sub_id, period) for sub_id, period in cur.fetchall()}
        return self

    def _select(self, where: str = "true") -> str:
        """The rated calls; ``where`` (over the stage ``s``) keeps some of
        them before the window — whole months only, as a segment's pool is
        shared by all of its calls."""
        return _RATED_SELECT.format(
            stage=self.stage, segs=self.segs, days=self.days, where=where
        )

    def rate_into(self, cur, out: str) -> int:
        """Write the ratings alone to ``out`` (line, band, billable, pool,
        charged, rate, amount); returns how many calls were rated."""
        if not self.keys:
            return 0
        cur.execute(
            f"INSERT INTO {out} (line, band, billable, pool, charged, rate, amount)"  # noqa: S608
            " SELECT line, band, billable, taken, billable - taken, rate,"
            f" (billable - taken) * rate FROM ({self._select()}) r",
            self.params,
        )
        return cur.rowcount

    def insert_calls(
        self,
        cur,
        *,
        table: str,
        rated_at,
        created_at,
        import_id: int | None,
        where: str = "true",
        where_params: Mapping | None = None,
    ) -> int:
        """Insert the calls of the months rated here into ``table``, rated;
        returns how many were inserted. The stage needs the call columns
        (call_id, company_id, subscription_id, number_id, caller_number,
        caller_area, answer_number, start_local, period, duration_seconds,
        direction, status). ``where`` (over the stage ``s``, with
        ``where_params``) keeps whole months of them, e.g. one month."""
        if not self.keys:
            return 0
        cur.execute(
            f"INSERT INTO {table} ({CALL_COLUMNS})"  # noqa: S608
            f" SELECT {_CALL_VALUES} FROM ({self._select(where)}) r",
            {
                **(where_params or {}),
                **self.params,
                "rated_at": rated_at,
                "created_at": created_at,
                "import_id": import_id,
            },
        )
        return cur.rowcount

    def drop(self, cur) -> None:
        cur.execute(f"DROP TABLE IF EXISTS {self.segs}, {self.days}, {self.done}")


def rate_staged(
    cur,
    *,
    stage: str,
    out: str,
    segments: Mapping[Key, Sequence[core.Segment]],
    calendar: core.Calendar,
    suffix: str,
) -> tuple[set[Key], int]:
    """Rate the staged calls of the months in ``segments`` into ``out``.

    ``stage`` has (line, call_id, subscription_id, period, start_local
    timestamp, duration_seconds, direction, status); ``out`` gets (line, band,
    billable, pool, charged, rate, amount). Returns the months rated and the
    number of calls rated. ``cur`` is a psycopg 3 cursor (Django's works).
    """
    rating = SqlRating.prepare(
        cur, stage=stage, segments=segments, calendar=calendar, suffix=suffix
    )
    rated = rating.rate_into(cur, out)
    rating.drop(cur)
    return rating.keys, rated
