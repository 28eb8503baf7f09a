"""Writing and reading the catalog in the database.

``catalog_load`` upserts a validated catalog in one transaction: a file with
any error changes nothing. ``catalog_snapshot`` reads the database back into
the plain ``Catalog`` that ``dump_catalog`` writes.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction

from audit.services import audit_record
from plans.catalog import (
    Catalog,
    CatalogSettingsData,
    GradeData,
    HolidayData,
    PlanData,
    ServiceData,
    parse_catalog,
)
from plans.models import (
    CarrierBlock,
    CatalogSettings,
    Holiday,
    PhoneNumber,
    Plan,
    TaxRate,
    ValueAddedService,
    VanityGrade,
)

logger = logging.getLogger(__name__)


@dataclass
class LoadReport:
    """What a load did: per section, how many rows were created / updated."""

    created: Counter = field(default_factory=Counter)
    updated: Counter = field(default_factory=Counter)
    unchanged: Counter = field(default_factory=Counter)
    #: Grades whose rules changed: run regrade_numbers to apply them.
    regrade_needed: list[str] = field(default_factory=list)
    #: Who loaded it (None: a management command, recorded as "system").
    by: Any = None

    def lines(self) -> list[str]:
        sections = sorted(set(self.created) | set(self.updated) | set(self.unchanged))
        return [
            f"{s}: {self.created[s]} created, {self.updated[s]} updated, "
            f"{self.unchanged[s]} unchanged"
            for s in sections
        ]


def _upsert(model, report: LoadReport, section: str, lookup: dict, values: dict):
    """Create or update one row; count what happened. Returns (row, status)."""
    obj = model.objects.select_for_update().filter(**lookup).first()
    if obj is None:
        obj = model.objects.create(**lookup, **values)
        report.created[section] += 1
        audit_record(
            actor=report.by,
            action="catalog.load.add",
            target=obj,
            after={**lookup, **values},
        )
        return obj, "created"
    changed = [k for k, v in values.items() if getattr(obj, k) != v]
    if not changed:
        report.unchanged[section] += 1
        return obj, "unchanged"
    before = {key: getattr(obj, key) for key in changed}
    for key in changed:
        setattr(obj, key, values[key])
    obj.save(update_fields=changed)
    report.updated[section] += 1
    audit_record(
        actor=report.by,
        action="catalog.load.change",
        target=obj,
        before=before,
        after={key: values[key] for key in changed},
    )
    return obj, "updated"


@transaction.atomic
def catalog_load(*, document: Any, by=None) -> LoadReport:
    """Validate ``document`` (parsed YAML/JSON) and upsert it by code.

    Raises ``plans.catalog.CatalogError`` listing every problem; then nothing
    was written. Rows not named in the file are left as they are.
    """
    existing = frozenset(ValueAddedService.objects.values_list("code", flat=True))
    catalog = parse_catalog(document, existing_service_codes=existing)
    report = LoadReport(by=by)

    for category, rate in catalog.tax_rates.items():
        _upsert(TaxRate, report, "tax_rates", {"category": category}, {"rate": rate})

    if catalog.settings is not None:
        s = catalog.settings
        _upsert(
            CatalogSettings,
            report,
            "settings",
            {"pk": 1},
            {
                "extra_answer_number_fee": s.extra_answer_number_fee,
                "peak_start": s.peak_start,
                "peak_end": s.peak_end,
                "peak_weekdays": list(s.peak_weekdays),
            },
        )

    for h in catalog.holidays:
        _upsert(
            Holiday,
            report,
            "holidays",
            {"date": h.date},
            {"kind": h.kind, "name": h.name},
        )

    for prefix, carrier in catalog.carrier_blocks.items():
        _upsert(
            CarrierBlock,
            report,
            "carrier_blocks",
            {"prefix": prefix},
            {"carrier": carrier},
        )

    for s in catalog.services:
        _upsert(
            ValueAddedService,
            report,
            "services",
            {"code": s.code},
            {
                "name_zh": s.name_zh,
                "name_en": s.name_en,
                "description_zh": s.description_zh,
                "description_en": s.description_en,
                "monthly_fee": s.monthly_fee,
                "is_active": s.active,
                "sort_order": s.order,
            },
        )

    services_by_code = {
        s.code: s for s in ValueAddedService.objects.all()
    }  # after the upsert
    for p in catalog.plans:
        plan, status = _upsert(
            Plan,
            report,
            "plans",
            {"code": p.code},
            {
                "name_zh": p.name_zh,
                "name_en": p.name_en,
                "description_zh": p.description_zh,
                "description_en": p.description_en,
                "term_months": p.term_months,
                "price": p.price,
                "included_minutes": p.included_minutes,
                "rate_inbound_peak": p.rate_inbound_peak,
                "rate_inbound_offpeak": p.rate_inbound_offpeak,
                "rate_outbound": p.rate_outbound,
                "included_answer_numbers": p.included_answer_numbers,
                "is_active": p.active,
                "sort_order": p.order,
            },
        )
        wanted = {services_by_code[c].pk for c in p.included_services}
        current = set(plan.included_services.values_list("pk", flat=True))
        if wanted != current:
            plan.included_services.set(wanted)
            audit_record(
                actor=by,
                action="catalog.load.change",
                target=plan,
                before={"included_services": sorted(current)},
                after={"included_services": sorted(wanted)},
            )
            if status == "unchanged":
                # Only the included services changed: count it as an update.
                report.unchanged["plans"] -= 1
                report.updated["plans"] += 1

    for g in catalog.vanity_grades:
        before = VanityGrade.objects.filter(code=g.code).values("rules").first()
        grade, status = _upsert(
            VanityGrade,
            report,
            "vanity_grades",
            {"code": g.code},
            {
                "name_zh": g.name_zh,
                "name_en": g.name_en,
                "selection_fee": g.selection_fee,
                "min_monthly": g.min_monthly,
                "priority": g.priority,
                "rules": g.rules,
                "is_active": g.active,
            },
        )
        vanity_grade_sync_fee(grade=grade)
        if status == "created" or before["rules"] != g.rules:
            report.regrade_needed.append(g.code)
    return report


def plans_in_use(*, plans) -> list[Plan]:
    """The plans among ``plans`` that some subscription has (had): these can
    only be deactivated, never deleted."""
    return list(plans.filter(subscription_periods__isnull=False).distinct())


@transaction.atomic
def vanity_grade_save(*, grade: VanityGrade) -> bool:
    """Save a grade edited in the back office; keep its numbers' fee in step.

    Returns whether its rules changed (the stock then needs regrading).
    """
    before = (
        VanityGrade.objects.filter(pk=grade.pk).values_list("rules", flat=True).first()
        if grade.pk
        else None
    )
    grade.save()
    vanity_grade_sync_fee(grade=grade)
    return before != grade.rules


def vanity_grade_sync_fee(*, grade: VanityGrade) -> int:
    """Copy the grade's selection fee onto its numbers (the search column).

    What a company agreed at checkout is kept on its subscription, so every
    number of the grade follows the current fee.
    """
    return (
        PhoneNumber.objects.filter(grade=grade)
        .exclude(selection_fee=grade.selection_fee)
        .update(selection_fee=grade.selection_fee)
    )


def catalog_snapshot() -> Catalog:
    """The catalog in the database, as plain data (for dump_catalog)."""
    taxes = {t.category: t.rate for t in TaxRate.objects.all()}
    row = CatalogSettings.objects.filter(pk=1).first()
    settings_data = (
        CatalogSettingsData(
            row.extra_answer_number_fee,
            row.peak_start,
            row.peak_end,
            tuple(sorted(row.peak_weekdays)),
        )
        if row
        else None
    )
    holidays = [HolidayData(h.date, h.kind, h.name) for h in Holiday.objects.all()]
    blocks = dict(CarrierBlock.objects.values_list("prefix", "carrier"))
    services = [
        ServiceData(
            code=s.code,
            name_zh=s.name_zh,
            name_en=s.name_en,
            monthly_fee=s.monthly_fee,
            description_zh=s.description_zh,
            description_en=s.description_en,
            active=s.is_active,
            order=s.sort_order,
        )
        for s in ValueAddedService.objects.all()
    ]
    plans = [
        PlanData(
            code=p.code,
            name_zh=p.name_zh,
            name_en=p.name_en,
            term_months=p.term_months,
            price=p.price,
            included_minutes=p.included_minutes,
            rate_inbound_peak=p.rate_inbound_peak,
            rate_inbound_offpeak=p.rate_inbound_offpeak,
            rate_outbound=p.rate_outbound,
            included_answer_numbers=p.included_answer_numbers,
            included_services=tuple(s.code for s in p.included_services.all()),
            description_zh=p.description_zh,
            description_en=p.description_en,
            active=p.is_active,
            order=p.sort_order,
        )
        for p in Plan.objects.prefetch_related("included_services")
    ]
    grades = [
        GradeData(
            code=g.code,
            name_zh=g.name_zh,
            name_en=g.name_en,
            selection_fee=g.selection_fee,
            min_monthly=g.min_monthly,
            priority=g.priority,
            rules=g.rules,
            active=g.is_active,
        )
        for g in VanityGrade.objects.all()
    ]
    return Catalog(taxes, settings_data, holidays, blocks, services, plans, grades)
