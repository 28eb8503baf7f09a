"""The catalog file: validation and serialisation, as pure functions.

``parse_catalog(document)`` checks a parsed YAML/JSON document and returns a
``Catalog`` of plain dataclasses, or raises ``CatalogError`` listing every
problem with its path (``plans[2].rates.outbound: not a decimal``).
``catalog_document(catalog)`` is the inverse, producing the canonical form
``dump_catalog`` writes. No ORM here: ``plans.catalog_services`` reads and
writes the database. The format is documented in ``docs/catalog.md``.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

import yaml
from django.utils.translation import gettext as _

from plans.grading import validate_rules

FORMAT_VERSION = 1
TAX_CATEGORIES = ("basic", "value_added")
CARRIERS = ("unicom", "mobile", "telecom")
HOLIDAY_KINDS = ("holiday", "workday")
TERMS = (1, 12, 24, 36)
SECTIONS = (
    "version",
    "tax_rates",
    "settings",
    "holidays",
    "carrier_blocks",
    "services",
    "plans",
    "vanity_grades",
)
RATE_KEYS = ("inbound_peak", "inbound_offpeak", "outbound")

_CODE = re.compile(r"[-a-zA-Z0-9_]{1,40}")
_PREFIX = re.compile(r"400[0-9]{0,7}")
_TIME = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])")
# Model limits: MONEY is max_digits 12 / 2 places, RATE 8 / 4, tax 5 / 4.
_MONEY_MAX = Decimal("9999999999.99")
_RATE_MAX = Decimal("9999.9999")
_SMALLINT_MAX = 32767
_INT_MAX = 2_147_483_647


class CatalogError(ValueError):
    """A catalog that cannot be loaded; ``errors`` lists every problem."""

    def __init__(self, errors: list[str]):
        super().__init__("\n".join(errors))
        self.errors = errors


# ---------------------------------------------------------------------------
# The catalog as plain data
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CatalogSettingsData:
    extra_answer_number_fee: Decimal
    peak_start: dt.time
    peak_end: dt.time
    peak_weekdays: tuple[int, ...]


@dataclass(frozen=True)
class HolidayData:
    date: dt.date
    kind: str
    name: str


@dataclass(frozen=True)
class ServiceData:
    code: str
    name_zh: str
    name_en: str
    monthly_fee: Decimal
    description_zh: str = ""
    description_en: str = ""
    active: bool = True
    order: int = 0


@dataclass(frozen=True)
class PlanData:
    code: str
    name_zh: str
    name_en: str
    term_months: int
    price: Decimal
    included_minutes: int
    rate_inbound_peak: Decimal
    rate_inbound_offpeak: Decimal
    rate_outbound: Decimal
    included_answer_numbers: int = 1
    included_services: tuple[str, ...] = ()
    description_zh: str = ""
    description_en: str = ""
    active: bool = True
    order: int = 0


@dataclass(frozen=True)
class GradeData:
    code: str
    name_zh: str
    name_en: str
    selection_fee: Decimal
    min_monthly: Decimal
    priority: int
    rules: list = field(default_factory=list)
    active: bool = True


@dataclass(frozen=True)
class Catalog:
    """A parsed catalog file. ``None`` / empty means "section not given"."""

    tax_rates: dict[str, Decimal] = field(default_factory=dict)
    settings: CatalogSettingsData | None = None
    holidays: list[HolidayData] = field(default_factory=list)
    carrier_blocks: dict[str, str] = field(default_factory=dict)
    services: list[ServiceData] = field(default_factory=list)
    plans: list[PlanData] = field(default_factory=list)
    vanity_grades: list[GradeData] = field(default_factory=list)


# ---------------------------------------------------------------------------
# Reading files
# ---------------------------------------------------------------------------


class _UniqueKeyLoader(yaml.SafeLoader):
    """A SafeLoader that refuses duplicate keys instead of keeping the last."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _value in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    _("duplicate key %(key)r") % {"key": key},
                    key_node.start_mark,
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def read_document(text: str, *, fmt: str = "yaml") -> Any:
    """Parse YAML or JSON text; syntax errors become a CatalogError."""
    if fmt == "json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise CatalogError(
                [
                    _("line %(line)s, column %(col)s: %(problem)s")
                    % {"line": exc.lineno, "col": exc.colno, "problem": exc.msg}
                ]
            ) from exc
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 (safe loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = (
            _("line %(line)s, column %(col)s")
            % {"line": mark.line + 1, "col": mark.column + 1}
            if mark
            else _("file")
        )
        raise CatalogError([f"{where}: {exc.problem}"]) from exc
    except yaml.YAMLError as exc:
        raise CatalogError([str(exc)]) from exc


class _CatalogDumper(yaml.SafeDumper):
    """Block style, except short lists of scalars (``[ivr, recording]``)."""

    def represent_list(self, data):
        flow = all(isinstance(x, (str, int, float, bool)) for x in data)
        return self.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


_CatalogDumper.add_representer(list, _CatalogDumper.represent_list)


def write_document(document: Mapping, *, fmt: str = "yaml") -> str:
    if fmt == "json":
        return json.dumps(document, ensure_ascii=False, indent=2) + "\n"
    return yaml.dump(
        document,
        Dumper=_CatalogDumper,
        allow_unicode=True,
        sort_keys=False,
        default_flow_style=False,
        width=88,
    )


# ---------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------


_REQUIRED = object()


class _Checker:
    """Collects errors with their paths while reading values."""

    def __init__(self):
        self.errors: list[str] = []

    def error(self, path: str, message: str) -> None:
        self.errors.append(f"{path}: {message}")

    def mapping(self, value, path, *, required=(), optional=()) -> dict | None:
        if not isinstance(value, Mapping):
            self.error(path, _("must be a mapping (key: value)"))
            return None
        allowed = set(required) | set(optional)
        for key in value:
            if key not in allowed:
                self.error(f"{path}.{key}", _("unknown key"))
        for key in required:
            if key not in value:
                self.error(f"{path}.{key}", _("is required"))
        return dict(value)

    def field(self, item: dict, path: str, key: str, check, *args, **kwargs):
        """``check(item[key], path.key)``; a missing key gives ``default`` if
        one is passed, else None (``mapping`` already reported it)."""
        default = kwargs.pop("default", _REQUIRED)
        if key in item:
            value = item[key]
        elif default is _REQUIRED:
            return None
        else:
            value = default
        return check(value, f"{path}.{key}", *args, **kwargs)

    def sequence(self, value, path) -> list | None:
        if not isinstance(value, list):
            self.error(path, _("must be a list"))
            return None
        return value

    def text(self, value, path, *, max_length=100, blank=False) -> str | None:
        if not isinstance(value, str):
            self.error(path, _("must be text"))
            return None
        value = value.strip()
        if not value and not blank:
            self.error(path, _("must not be empty"))
            return None
        if len(value) > max_length:
            self.error(path, _("must be at most %(n)s characters") % {"n": max_length})
            return None
        return value

    def code(self, value, path) -> str | None:
        if not isinstance(value, str) or not _CODE.fullmatch(value):
            self.error(
                path,
                _("must be a code of 1 to 40 letters, digits, hyphens or underscores"),
            )
            return None
        return value

    def decimal(self, value, path, *, places, maximum) -> Decimal | None:
        # Numbers may be written bare (199.00) or quoted ("199.00"); floats
        # are read through their shortest repr, so 0.12 stays 0.12.
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            self.error(path, _("not a decimal"))
            return None
        try:
            number = Decimal(repr(value) if isinstance(value, float) else str(value))
        except InvalidOperation:
            self.error(path, _("not a decimal"))
            return None
        if not number.is_finite():
            self.error(path, _("not a decimal"))
            return None
        if number < 0:
            self.error(path, _("must not be negative"))
            return None
        if number > maximum:
            self.error(path, _("must be at most %(max)s") % {"max": maximum})
            return None
        if -number.as_tuple().exponent > places:
            self.error(
                path,
                _("has more than %(places)s decimal places") % {"places": places},
            )
            return None
        return number

    def money(self, value, path) -> Decimal | None:
        return self.decimal(value, path, places=2, maximum=_MONEY_MAX)

    def rate(self, value, path) -> Decimal | None:
        return self.decimal(value, path, places=4, maximum=_RATE_MAX)

    def prefix(self, value, path) -> str | None:
        if not isinstance(value, str) or not _PREFIX.fullmatch(value):
            self.error(
                path, _("must be 3 to 10 digits starting with 400, written in quotes")
            )
            return None
        return value

    def rules(self, value, path) -> list | None:
        errors = validate_rules(value, path)
        self.errors.extend(errors)
        return None if errors else value

    def integer(self, value, path, *, minimum=0, maximum=_INT_MAX) -> int | None:
        if isinstance(value, bool) or not isinstance(value, int):
            self.error(path, _("not a whole number"))
            return None
        if not minimum <= value <= maximum:
            self.error(
                path,
                _("must be from %(min)s to %(max)s") % {"min": minimum, "max": maximum},
            )
            return None
        return value

    def boolean(self, value, path) -> bool | None:
        if not isinstance(value, bool):
            self.error(path, _("must be true or false"))
            return None
        return value

    def choice(self, value, path, choices) -> Any:
        if value not in choices or isinstance(value, bool):
            self.error(
                path,
                _("must be one of %(choices)s")
                % {"choices": ", ".join(str(c) for c in choices)},
            )
            return None
        return value

    def date(self, value, path) -> dt.date | None:
        if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
            return value
        if isinstance(value, str):
            try:
                return dt.date.fromisoformat(value)
            except ValueError:
                pass
        self.error(path, _("not a date (YYYY-MM-DD)"))
        return None

    def time(self, value, path) -> dt.time | None:
        match = _TIME.fullmatch(value) if isinstance(value, str) else None
        if match is None:
            # YAML 1.1 reads an unquoted 20:00 as the number 1200.
            self.error(path, _('not a time: write it quoted, as "HH:MM"'))
            return None
        return dt.time(int(match[1]), int(match[2]))

    def unique(self, items, key: Callable, path: str, label: str) -> None:
        seen: dict[Any, int] = {}
        for i, item in enumerate(items):
            value = key(item)
            if value is None:
                continue
            if value in seen:
                self.error(
                    f"{path}[{i}].{label}",
                    _("duplicate %(label)s %(value)s (also at %(path)s[%(first)s])")
                    % {
                        "label": label,
                        "value": value,
                        "path": path,
                        "first": seen[value],
                    },
                )
            else:
                seen[value] = i


def _names(c: _Checker, item: dict, path: str) -> dict:
    return {
        "name_zh": c.field(item, path, "name_zh", c.text),
        "name_en": c.field(item, path, "name_en", c.text),
    }


def _descriptions(c: _Checker, item: dict, path: str) -> dict:
    return {
        key: c.field(item, path, key, c.text, max_length=2000, blank=True, default="")
        for key in ("description_zh", "description_en")
    }


def _parse_tax_rates(c: _Checker, value) -> dict[str, Decimal]:
    rates = c.mapping(value, "tax_rates", optional=TAX_CATEGORIES)
    out = {}
    for category, rate in (rates or {}).items():
        if category in TAX_CATEGORIES:
            parsed = c.decimal(
                rate, f"tax_rates.{category}", places=4, maximum=Decimal("9.9999")
            )
            if parsed is not None:
                out[category] = parsed
    return out


def _parse_settings(c: _Checker, value) -> CatalogSettingsData | None:
    keys = ("extra_answer_number_fee", "peak_start", "peak_end", "peak_weekdays")
    item = c.mapping(value, "settings", required=keys)
    if item is None:
        return None
    path = "settings"
    fee = c.field(item, path, "extra_answer_number_fee", c.money)
    start = c.field(item, path, "peak_start", c.time)
    end = c.field(item, path, "peak_end", c.time)
    if start and end and start >= end:
        c.error("settings.peak_end", _("must be later than peak_start"))
    days = c.field(item, path, "peak_weekdays", c.sequence)
    weekdays: list[int] = []
    for i, day in enumerate(days or []):
        parsed = c.integer(day, f"settings.peak_weekdays[{i}]", minimum=1, maximum=7)
        if parsed in weekdays:
            c.error(f"settings.peak_weekdays[{i}]", _("listed twice"))
        elif parsed is not None:
            weekdays.append(parsed)
    if None in (fee, start, end, days):
        return None
    return CatalogSettingsData(fee, start, end, tuple(sorted(weekdays)))


def _get(item, key):
    value = item.get(key) if isinstance(item, Mapping) else None
    return str(value) if value is not None else None


def _parse_holidays(c: _Checker, value) -> list[HolidayData]:
    out = []
    items = c.sequence(value, "holidays") or []
    for i, raw in enumerate(items):
        path = f"holidays[{i}]"
        item = c.mapping(raw, path, required=("date", "kind"), optional=("name",))
        if item is None:
            continue
        fields = {
            "date": c.field(item, path, "date", c.date),
            "kind": c.field(item, path, "kind", c.choice, HOLIDAY_KINDS),
            "name": c.field(item, path, "name", c.text, blank=True, default=""),
        }
        if None not in fields.values():
            out.append(HolidayData(**fields))
    c.unique(items, lambda x: _get(x, "date"), "holidays", "date")
    return out


def _parse_blocks(c: _Checker, value) -> dict[str, str]:
    out = {}
    items = c.sequence(value, "carrier_blocks") or []
    for i, raw in enumerate(items):
        path = f"carrier_blocks[{i}]"
        item = c.mapping(raw, path, required=("prefix", "carrier"))
        if item is None:
            continue
        prefix = c.field(item, path, "prefix", c.prefix)
        carrier = c.field(item, path, "carrier", c.choice, CARRIERS)
        if prefix and carrier:
            out[prefix] = carrier
    c.unique(items, lambda x: _get(x, "prefix"), "carrier_blocks", "prefix")
    return out


_SERVICE_KEYS = ("code", "name_zh", "name_en", "monthly_fee")
_SERVICE_OPTIONAL = ("description_zh", "description_en", "active", "order")


def _parse_services(c: _Checker, value) -> list[ServiceData]:
    out = []
    items = c.sequence(value, "services") or []
    for i, raw in enumerate(items):
        path = f"services[{i}]"
        item = c.mapping(raw, path, required=_SERVICE_KEYS, optional=_SERVICE_OPTIONAL)
        if item is None:
            continue
        fields = {
            "code": c.field(item, path, "code", c.code),
            **_names(c, item, path),
            "monthly_fee": c.field(item, path, "monthly_fee", c.money),
            **_descriptions(c, item, path),
            "active": c.field(item, path, "active", c.boolean, default=True),
            "order": c.field(item, path, "order", c.integer, default=i + 1),
        }
        if None not in fields.values():
            out.append(ServiceData(**fields))
    c.unique(items, lambda x: _get(x, "code"), "services", "code")
    return out


_PLAN_KEYS = (
    "code",
    "name_zh",
    "name_en",
    "term_months",
    "price",
    "included_minutes",
    "rates",
)
_PLAN_OPTIONAL = (
    "included_answer_numbers",
    "included_services",
    "description_zh",
    "description_en",
    "active",
    "order",
)


def _parse_rates(c: _Checker, value, path) -> dict | None:
    rates = c.mapping(value, path, required=RATE_KEYS)
    if rates is None:
        return None
    parsed = {f"rate_{key}": c.field(rates, path, key, c.rate) for key in RATE_KEYS}
    return None if None in parsed.values() else parsed


def _parse_service_codes(c: _Checker, value, path, known: set[str]):
    services = c.sequence(value, path)
    if services is None:
        return None
    codes: list[str] = []
    for j, code in enumerate(services):
        spath = f"{path}[{j}]"
        if c.code(code, spath) is None:
            continue
        if code not in known:
            c.error(
                spath,
                _("no value-added service has code %(code)s") % {"code": code},
            )
        elif code in codes:
            c.error(spath, _("listed twice"))
        else:
            codes.append(code)
    return tuple(codes)


def _parse_plans(c: _Checker, value, service_codes: set[str]) -> list[PlanData]:
    out = []
    items = c.sequence(value, "plans") or []
    for i, raw in enumerate(items):
        path = f"plans[{i}]"
        item = c.mapping(raw, path, required=_PLAN_KEYS, optional=_PLAN_OPTIONAL)
        if item is None:
            continue
        fields = {
            "code": c.field(item, path, "code", c.code),
            **_names(c, item, path),
            "term_months": c.field(item, path, "term_months", c.choice, TERMS),
            "price": c.field(item, path, "price", c.money),
            "included_minutes": c.field(item, path, "included_minutes", c.integer),
            "rates": c.field(item, path, "rates", lambda v, p: _parse_rates(c, v, p)),
            "included_answer_numbers": c.field(
                item,
                path,
                "included_answer_numbers",
                c.integer,
                maximum=_SMALLINT_MAX,
                default=1,
            ),
            "included_services": c.field(
                item,
                path,
                "included_services",
                lambda v, p: _parse_service_codes(c, v, p, service_codes),
                default=[],
            ),
            **_descriptions(c, item, path),
            "active": c.field(item, path, "active", c.boolean, default=True),
            "order": c.field(item, path, "order", c.integer, default=i + 1),
        }
        if None not in fields.values():
            rates = fields.pop("rates")
            out.append(PlanData(**fields, **rates))
    c.unique(items, lambda x: _get(x, "code"), "plans", "code")
    return out


_GRADE_KEYS = (
    "code",
    "name_zh",
    "name_en",
    "selection_fee",
    "priority",
    "rules",
)
_GRADE_OPTIONAL = ("min_monthly", "active")


def _parse_grades(c: _Checker, value) -> list[GradeData]:
    out = []
    items = c.sequence(value, "vanity_grades") or []
    for i, raw in enumerate(items):
        path = f"vanity_grades[{i}]"
        item = c.mapping(raw, path, required=_GRADE_KEYS, optional=_GRADE_OPTIONAL)
        if item is None:
            continue
        fields = {
            "code": c.field(item, path, "code", c.code),
            **_names(c, item, path),
            "selection_fee": c.field(item, path, "selection_fee", c.money),
            "min_monthly": c.field(item, path, "min_monthly", c.money, default=0),
            "priority": c.field(item, path, "priority", c.integer),
            "active": c.field(item, path, "active", c.boolean, default=True),
            "rules": c.field(item, path, "rules", c.rules),
        }
        if None not in fields.values():
            out.append(GradeData(**fields))
    c.unique(items, lambda x: _get(x, "code"), "vanity_grades", "code")
    c.unique(items, lambda x: _get(x, "priority"), "vanity_grades", "priority")
    return out


def parse_catalog(
    document: Any, *, existing_service_codes: frozenset[str] = frozenset()
) -> Catalog:
    """Validate a parsed catalog file; raise CatalogError with every problem.

    Every section is optional: a file may carry only plans, say. A plan may
    include services defined in the same file or already in the database
    (``existing_service_codes``).
    """
    c = _Checker()
    if not isinstance(document, Mapping):
        raise CatalogError([_("file: must be a mapping of sections")])
    for key in document:
        if key not in SECTIONS:
            c.error(
                str(key),
                _("unknown section; expected one of %(choices)s")
                % {"choices": ", ".join(SECTIONS)},
            )
    if "version" in document and document["version"] != FORMAT_VERSION:
        c.error("version", _("must be %(version)s") % {"version": FORMAT_VERSION})
    tax_rates = (
        _parse_tax_rates(c, document["tax_rates"]) if "tax_rates" in document else {}
    )
    settings = (
        _parse_settings(c, document["settings"]) if "settings" in document else None
    )
    holidays = (
        _parse_holidays(c, document["holidays"]) if "holidays" in document else []
    )
    blocks = (
        _parse_blocks(c, document["carrier_blocks"])
        if "carrier_blocks" in document
        else {}
    )
    services = (
        _parse_services(c, document["services"]) if "services" in document else []
    )
    raw_services = document.get("services")
    file_codes = {
        s.get("code")
        for s in (raw_services if isinstance(raw_services, list) else [])
        if isinstance(s, Mapping) and isinstance(s.get("code"), str)
    }
    plans = (
        _parse_plans(c, document["plans"], set(existing_service_codes) | file_codes)
        if "plans" in document
        else []
    )
    grades = (
        _parse_grades(c, document["vanity_grades"])
        if "vanity_grades" in document
        else []
    )
    if c.errors:
        raise CatalogError(c.errors)
    return Catalog(tax_rates, settings, holidays, blocks, services, plans, grades)


# ---------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------


def _fixed(value: Decimal, places: int) -> str:
    return f"{value.quantize(Decimal(1).scaleb(-places)):f}"


def _tax(value: Decimal) -> str:
    text = f"{value.normalize():f}"
    whole, _dot, frac = text.partition(".")
    return f"{whole}.{frac.ljust(2, '0')}"


def catalog_document(catalog: Catalog) -> dict:
    """The canonical document for ``catalog`` (what dump_catalog writes)."""
    doc: dict[str, Any] = {"version": FORMAT_VERSION}
    doc["tax_rates"] = {
        k: _tax(catalog.tax_rates[k]) for k in TAX_CATEGORIES if k in catalog.tax_rates
    }
    if catalog.settings is not None:
        s = catalog.settings
        doc["settings"] = {
            "extra_answer_number_fee": _fixed(s.extra_answer_number_fee, 2),
            "peak_start": s.peak_start.strftime("%H:%M"),
            "peak_end": s.peak_end.strftime("%H:%M"),
            "peak_weekdays": list(s.peak_weekdays),
        }
    doc["holidays"] = [
        {"date": h.date.isoformat(), "kind": h.kind, "name": h.name}
        for h in sorted(catalog.holidays, key=lambda h: h.date)
    ]
    doc["carrier_blocks"] = [
        {"prefix": p, "carrier": c} for p, c in sorted(catalog.carrier_blocks.items())
    ]
    doc["services"] = [
        {
            "code": s.code,
            "name_zh": s.name_zh,
            "name_en": s.name_en,
            "monthly_fee": _fixed(s.monthly_fee, 2),
            "description_zh": s.description_zh,
            "description_en": s.description_en,
            "active": s.active,
            "order": s.order,
        }
        for s in sorted(catalog.services, key=lambda s: (s.order, s.code))
    ]
    doc["plans"] = [
        {
            "code": p.code,
            "name_zh": p.name_zh,
            "name_en": p.name_en,
            "term_months": p.term_months,
            "price": _fixed(p.price, 2),
            "included_minutes": p.included_minutes,
            "rates": {
                "inbound_peak": _fixed(p.rate_inbound_peak, 4),
                "inbound_offpeak": _fixed(p.rate_inbound_offpeak, 4),
                "outbound": _fixed(p.rate_outbound, 4),
            },
            "included_answer_numbers": p.included_answer_numbers,
            "included_services": sorted(p.included_services),
            "description_zh": p.description_zh,
            "description_en": p.description_en,
            "active": p.active,
            "order": p.order,
        }
        for p in sorted(catalog.plans, key=lambda p: (p.order, p.code))
    ]
    doc["vanity_grades"] = [
        {
            "code": g.code,
            "name_zh": g.name_zh,
            "name_en": g.name_en,
            "selection_fee": _fixed(g.selection_fee, 2),
            "min_monthly": _fixed(g.min_monthly, 2),
            "priority": g.priority,
            "active": g.active,
            "rules": g.rules,
        }
        for g in sorted(catalog.vanity_grades, key=lambda g: (-g.priority, g.code))
    ]
    return doc
