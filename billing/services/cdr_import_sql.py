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
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

from billing import rating as core

Key = tuple[int, dt.date]


def _copy_rows(cur, table: str, columns: str, rows: list[tuple]) -> None:
    with cur.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


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
    seg_table = f"cdr_sql_segments_{suffix}"
    day_table = f"cdr_sql_days_{suffix}"
    cur.execute(f"DROP TABLE IF EXISTS {seg_table}, {day_table}")
    cur.execute(
        f"CREATE TEMP TABLE {seg_table} (seg integer PRIMARY KEY,"
        " subscription_id bigint, period date, lo date, hi date, pool bigint,"
        " r_peak numeric(8,4), r_offpeak numeric(8,4), r_out numeric(8,4))"
    )
    cur.execute(f"CREATE TEMP TABLE {day_table} (day date PRIMARY KEY, kind text)")
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
        return set(), 0
    _copy_rows(
        cur,
        seg_table,
        "seg, subscription_id, period, lo, hi, pool, r_peak, r_offpeak, r_out",
        rows,
    )
    _copy_rows(cur, day_table, "day, kind", sorted(calendar.holidays.items()))
    cur.execute(f"CREATE INDEX ON {seg_table} (subscription_id, period)")
    cur.execute(f"ANALYZE {seg_table}")
    cur.execute(f"ANALYZE {day_table}")
    # Months with a staged call outside every segment: not rated here.
    cur.execute(
        f"DELETE FROM {seg_table} g USING ("  # noqa: S608
        f" SELECT DISTINCT s.subscription_id, s.period FROM {stage} s"
        f" WHERE EXISTS (SELECT 1 FROM {seg_table} k"
        "  WHERE k.subscription_id = s.subscription_id AND k.period = s.period)"
        f" AND NOT EXISTS (SELECT 1 FROM {seg_table} k"
        "  WHERE k.subscription_id = s.subscription_id AND k.period = s.period"
        "  AND s.start_local::date BETWEEN k.lo AND k.hi)) bad"
        " WHERE g.subscription_id = bad.subscription_id AND g.period = bad.period"
    )
    cur.execute(
        f"INSERT INTO {out} (line, band, billable, pool, charged, rate, amount)"  # noqa: S608
        " SELECT line, band, billable, taken, billable - taken, rate,"
        " (billable - taken) * rate"
        " FROM (SELECT line, band, billable, rate,"
        "  CASE WHEN direction = 'inbound' THEN GREATEST(0, LEAST(billable,"
        "   pool - (SUM(billable) OVER w - billable))) ELSE 0 END AS taken"
        "  FROM (SELECT s.line, s.call_id, s.direction, g.seg, g.pool,"
        "   s.start_local AT TIME ZONE 'Asia/Shanghai' AS instant, b.band,"
        "   CASE WHEN s.status = 'answered' AND s.duration_seconds > 0"
        "    THEN (s.duration_seconds::bigint + 59) / 60 ELSE 0 END AS billable,"
        "   CASE WHEN s.direction = 'outbound' THEN g.r_out"
        "    WHEN b.band = 'peak' THEN g.r_peak ELSE g.r_offpeak END AS rate"
        f"   FROM {stage} s"
        f"   JOIN {seg_table} g ON g.subscription_id = s.subscription_id"
        "    AND g.period = s.period AND s.start_local::date BETWEEN g.lo AND g.hi"
        f"   LEFT JOIN {day_table} h ON h.day = s.start_local::date"
        "   CROSS JOIN LATERAL (SELECT CASE WHEN"
        "    (CASE h.kind WHEN %(holiday)s THEN false WHEN %(workday)s THEN true"
        "     ELSE extract(isodow FROM s.start_local)::int = ANY(%(weekdays)s)"
        "     END)"
        "    AND s.start_local::time >= %(peak_start)s"
        "    AND s.start_local::time < %(peak_end)s"
        "    THEN 'peak' ELSE 'offpeak' END AS band) b"
        "  ) c"
        "  WINDOW w AS (PARTITION BY seg, direction"
        '   ORDER BY instant, call_id COLLATE "C" ROWS UNBOUNDED PRECEDING)'
        " ) r",
        {
            "holiday": core.HOLIDAY,
            "workday": core.WORKDAY,
            "weekdays": sorted(calendar.peak_weekdays),
            "peak_start": calendar.peak_start,
            "peak_end": calendar.peak_end,
        },
    )
    rated = cur.rowcount
    cur.execute(f"SELECT DISTINCT subscription_id, period FROM {seg_table}")  # noqa: S608
    keys = {(sub_id, period) for sub_id, period in cur.fetchall()}
    cur.execute(f"DROP TABLE {seg_table}, {day_table}")
    return keys, rated
