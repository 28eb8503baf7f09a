"""Month-to-date bill, usage analytics and the plan advisor."""

from __future__ import annotations

from django.shortcuts import render
from django.utils import timezone
from django.utils.dates import WEEKDAYS_ABBR
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from accounts.decorators import bills_required
from billing import charts
from billing.advisor import company_advice
from billing.selectors import bills as bill_sel
from billing.selectors.month import month_to_date as mtd
from billing.selectors.usage import usage_summary

from .common import current_period, month_choices, peak_hours, period_from_request


@require_GET
@bills_required
def month_to_date(request):
    company = request.user.company
    data = mtd(company=company, today=timezone.localdate())
    groups = bill_sel.group_lines(data.lines)
    return render(
        request,
        "billing/month_to_date.html",
        {
            "mtd": data,
            "groups": groups,
            "vat": data.computation.vat,
            "vat_net": sum((r.net for r in data.computation.vat), 0),
            "vat_tax": sum((r.tax for r in data.computation.vat), 0),
            "peak_hours": peak_hours(),
        },
    )


@require_GET
@bills_required
def analytics(request):
    company = request.user.company
    period, error = period_from_request(request, default=current_period())
    summary = usage_summary(company=company, period=period)
    month = f"{period:%Y-%m}"
    answered, missed = _("Answered"), _("Missed")
    daily = charts.stacked_bars(
        [str(d.day.day) for d in summary.days],
        [
            charts.Series(answered, [d.answered for d in summary.days]),
            charts.Series(missed, [d.missed for d in summary.days], hatched=True),
        ],
        title=_("Inbound calls per day, %(month)s") % {"month": month},
        desc=_(
            "%(calls)s calls, %(answered)s answered and %(missed)s missed. "
            "Missed calls are the hatched part of each bar."
        )
        % {
            "calls": summary.calls,
            "answered": summary.answered,
            "missed": summary.missed,
        },
        uid="chart-daily",
    )
    area_items = [(a.area or _("Unknown"), a.calls) for a in summary.areas]
    if summary.other_areas:
        area_items.append((_("Other areas"), summary.other_areas))
    areas = charts.hbars(
        area_items,
        title=_("Calls by caller area"),
        desc=_("Inbound calls per caller area, largest first."),
        uid="chart-areas",
    )
    weekdays = [str(WEEKDAYS_ABBR[i]) for i in range(7)]
    heat = charts.heatmap(
        summary.heat,
        row_labels=weekdays,
        col_labels=[f"{h:02d}" for h in range(24)],
        title=_("Calls by hour of day and weekday"),
        desc=_(
            "Number of inbound calls starting in each hour (Beijing time) of each "
            "weekday; darker cells have more calls, and each cell shows its count."
        ),
        uid="chart-heat",
    )
    numbers = charts.hbars(
        [(n.number, n.minutes) for n in summary.numbers],
        title=_("Billable minutes by 400 number"),
        desc=_("Inbound and outbound billable minutes of each 400 number."),
        uid="chart-numbers",
        unit=_("min"),
    )
    return render(
        request,
        "billing/analytics.html",
        {
            "summary": summary,
            "period": period,
            "months": month_choices(),
            "error": error,
            "chart_daily": daily,
            "chart_areas": areas,
            "chart_heat": heat,
            "chart_numbers": numbers,
            "weekdays": list(zip(weekdays, summary.heat, strict=True)),
            "hours": range(24),
        },
    )


@require_GET
@bills_required
def advisor(request):
    company = request.user.company
    advice = company_advice(company=company, today=timezone.localdate())
    return render(
        request,
        "billing/advisor.html",
        {"advice": advice},
    )
