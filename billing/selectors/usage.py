"""Usage analytics of a company's month, aggregated in SQL.

Counts are of inbound calls (people calling the company's 400 numbers):
answered vs missed and the miss rate (漏接率) only make sense for those.
Minutes by number show inbound and outbound billable minutes separately.
Days, hours and weekdays are Beijing time (Asia/Shanghai).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.db.models import Count, DecimalField, Q, Sum, Value
from django.db.models.functions import (
    Coalesce,
    ExtractHour,
    ExtractIsoWeekDay,
    TruncDate,
)

from accounts.models import Company
from billing.models import CallRecord, CallStatus, Direction
from billing.rating import days_in_month

SHANGHAI = ZoneInfo("Asia/Shanghai")
TOP_AREAS = 10

_ANSWERED = Q(status=CallStatus.ANSWERED)
_MISSED = Q(status=CallStatus.MISSED)


@dataclass(frozen=True)
class DayRow:
    day: dt.date
    calls: int
    answered: int
    missed: int
    minutes: int


@dataclass(frozen=True)
class AreaRow:
    area: str
    calls: int
    answered: int
    missed: int


@dataclass(frozen=True)
class NumberRow:
    number: str
    calls: int
    answered: int
    missed: int
    inbound_minutes: int
    outbound_minutes: int
    amount: Decimal

    @property
    def minutes(self) -> int:
        return self.inbound_minutes + self.outbound_minutes


@dataclass
class UsageSummary:
    period: dt.date
    days: list[DayRow]
    areas: list[AreaRow]
    # heat[weekday - 1][hour]: inbound calls starting in that hour of that
    # ISO weekday (1 = Monday).
    heat: list[list[int]]
    numbers: list[NumberRow]
    other_areas: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def calls(self) -> int:
        return sum(d.calls for d in self.days)

    @property
    def answered(self) -> int:
        return sum(d.answered for d in self.days)

    @property
    def missed(self) -> int:
        return sum(d.missed for d in self.days)

    @property
    def minutes(self) -> int:
        return sum(d.minutes for d in self.days)

    @property
    def miss_rate(self) -> Decimal | None:
        """Missed / all inbound calls, as a percentage with one decimal."""
        if not self.calls:
            return None
        return (Decimal(self.missed) * 100 / self.calls).quantize(Decimal("0.1"))

    @property
    def heat_max(self) -> int:
        return max((max(row) for row in self.heat), default=0)


def _month_calls(company: Company, period: dt.date):
    return CallRecord.objects.filter(company=company, period=period).order_by()


def usage_summary(*, company: Company, period: dt.date) -> UsageSummary:
    """The analytics of one month in four aggregate queries."""
    period = period.replace(day=1)
    calls = _month_calls(company, period)
    inbound = calls.filter(direction=Direction.INBOUND)

    per_day = {
        row["day"]: row
        for row in inbound.annotate(day=TruncDate("start_time", tzinfo=SHANGHAI))
        .values("day")
        .annotate(
            calls=Count("pk"),
            answered=Count("pk", filter=_ANSWERED),
            missed=Count("pk", filter=_MISSED),
            minutes=Coalesce(Sum("billable_minutes"), 0),
        )
    }
    days = []
    for d in range(1, days_in_month(period) + 1):
        day = period.replace(day=d)
        row = per_day.get(day)
        days.append(
            DayRow(
                day=day,
                calls=row["calls"] if row else 0,
                answered=row["answered"] if row else 0,
                missed=row["missed"] if row else 0,
                minutes=row["minutes"] if row else 0,
            )
        )

    area_rows = list(
        inbound.values("caller_area")
        .annotate(
            calls=Count("pk"),
            answered=Count("pk", filter=_ANSWERED),
            missed=Count("pk", filter=_MISSED),
        )
        .order_by("-calls", "caller_area")
    )
    areas = [
        AreaRow(r["caller_area"], r["calls"], r["answered"], r["missed"])
        for r in area_rows[:TOP_AREAS]
    ]
    other = sum(r["calls"] for r in area_rows[TOP_AREAS:])

    heat = [[0] * 24 for _ in range(7)]
    for row in (
        inbound.annotate(
            wd=ExtractIsoWeekDay("start_time", tzinfo=SHANGHAI),
            hour=ExtractHour("start_time", tzinfo=SHANGHAI),
        )
        .values("wd", "hour")
        .annotate(n=Count("pk"))
    ):
        heat[row["wd"] - 1][row["hour"]] = row["n"]

    numbers = [
        NumberRow(
            number=r["number__number"],
            calls=r["calls"],
            answered=r["answered"],
            missed=r["missed"],
            inbound_minutes=r["in_min"],
            outbound_minutes=r["out_min"],
            amount=r["amount"],
        )
        for r in calls.values("number__number")
        .annotate(
            calls=Count("pk", filter=Q(direction=Direction.INBOUND)),
            answered=Count("pk", filter=Q(direction=Direction.INBOUND) & _ANSWERED),
            missed=Count("pk", filter=Q(direction=Direction.INBOUND) & _MISSED),
            in_min=Coalesce(
                Sum("billable_minutes", filter=Q(direction=Direction.INBOUND)), 0
            ),
            out_min=Coalesce(
                Sum("billable_minutes", filter=Q(direction=Direction.OUTBOUND)), 0
            ),
            amount=Coalesce(
                Sum("amount"),
                Value(Decimal("0")),
                output_field=DecimalField(max_digits=18, decimal_places=4),
            ),
        )
        .order_by("number__number")
    ]
    return UsageSummary(
        period=period,
        days=days,
        areas=areas,
        other_areas=other,
        heat=heat,
        numbers=numbers,
    )
