"""Small helpers shared by the billing pages."""

from __future__ import annotations

import datetime as dt

from django.utils import timezone
from django.utils.translation import gettext as _


def current_period() -> dt.date:
    """First day of the running month, Asia/Shanghai."""
    return timezone.localdate().replace(day=1)


def parse_period(value: str | None) -> dt.date | None:
    """``"2026-03"`` → 2026-03-01; None for anything else."""
    if not value:
        return None
    try:
        year, month = value.strip().split("-")
        period = dt.date(int(year), int(month), 1)
    except (ValueError, TypeError):
        return None
    if not 2000 <= period.year <= 2100:
        return None
    return period


def month_choices(*, count: int = 13) -> list[dt.date]:
    """The running month and the ones before it, newest first."""
    period = current_period()
    out = []
    for _i in range(count):
        out.append(period)
        period = (period - dt.timedelta(days=1)).replace(day=1)
    return out


def period_from_request(request, *, default: dt.date) -> tuple[dt.date, str]:
    """The ``month`` query parameter, or ``default`` with an error to show."""
    raw = request.GET.get("month")
    if raw is None or raw == "":
        return default, ""
    period = parse_period(raw)
    if period is None:
        return default, _(
            "“%(value)s” is not a month; please pick one from the list."
        ) % {"value": raw[:20]}
    return period, ""


def peak_hours() -> dict:
    """The catalog's peak hours in words, for "how this bill is calculated"."""
    from django.utils.dates import WEEKDAYS

    from plans.models import CatalogSettings

    row = CatalogSettings.load()
    days = sorted(int(d) for d in (row.peak_weekdays or []))
    if days == [1, 2, 3, 4, 5]:
        text = _("Monday to Friday")
    else:
        text = _(", ").join(str(WEEKDAYS[d - 1]) for d in days) or _("no day")
    return {
        "days": text,
        "start": row.peak_start.strftime("%H:%M")
        if hasattr(row.peak_start, "strftime")
        else str(row.peak_start)[:5],
        "end": row.peak_end.strftime("%H:%M")
        if hasattr(row.peak_end, "strftime")
        else str(row.peak_end)[:5],
    }
