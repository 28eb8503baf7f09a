"""The catalog file: validation with paths, all-or-nothing loads, round trip."""

import json
from decimal import Decimal
from io import StringIO
from pathlib import Path

import pytest
import yaml
from django.core.management import CommandError, call_command
from django.utils import translation
from hypothesis import given, settings
from hypothesis import strategies as st

from plans.catalog import (
    CARRIERS,
    HOLIDAY_KINDS,
    TAX_CATEGORIES,
    TERMS,
    Catalog,
    CatalogError,
    GradeData,
    PlanData,
    ServiceData,
    catalog_document,
    parse_catalog,
    read_document,
)
from plans.catalog_services import catalog_load
from plans.models import (
    Carrier,
    CarrierBlock,
    CatalogSettings,
    Holiday,
    Plan,
    TaxCategory,
    TaxRate,
    ValueAddedService,
    VanityGrade,
)
from tests.factories import PhoneNumberFactory, PlanFactory, VanityGradeFactory

EXAMPLE = Path(__file__).resolve().parents[2] / "catalog" / "example.yaml"


@pytest.fixture(autouse=True)
def _english():
    with translation.override("en"):
        yield


def small_catalog() -> dict:
    return {
        "version": 1,
        "tax_rates": {"basic": "0.09", "value_added": "0.06"},
        "settings": {
            "extra_answer_number_fee": "10.00",
            "peak_start": "08:00",
            "peak_end": "20:00",
            "peak_weekdays": [1, 2, 3, 4, 5],
        },
        "holidays": [{"date": "2026-10-01", "kind": "holiday", "name": "国庆节"}],
        "carrier_blocks": [{"prefix": "4008", "carrier": "telecom"}],
        "services": [
            {
                "code": "ivr",
                "name_zh": "语音导航",
                "name_en": "IVR",
                "monthly_fee": "30.00",
            }
        ],
        "plans": [
            {
                "code": "m199",
                "name_zh": "包月199",
                "name_en": "Monthly 199",
                "term_months": 1,
                "price": "199.00",
                "included_minutes": 800,
                "rates": {
                    "inbound_peak": "0.2200",
                    "inbound_offpeak": "0.1600",
                    "outbound": "0.1800",
                },
                "included_services": ["ivr"],
            }
        ],
        "vanity_grades": [
            {
                "code": "supreme",
                "name_zh": "至尊",
                "name_en": "Supreme",
                "selection_fee": "20000.00",
                "min_monthly": "299.00",
                "priority": 900,
                "rules": [{"type": "repeat", "length": 4}],
            }
        ],
    }


def write(tmp_path, document, name="catalog.yaml") -> str:
    path = tmp_path / name
    if name.endswith(".json"):
        path.write_text(json.dumps(document, ensure_ascii=False), encoding="utf-8")
    else:
        path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    return str(path)


def db_state() -> list:
    """Everything a catalog load may touch, for before/after comparisons."""
    return [
        list(TaxRate.objects.values().order_by("pk")),
        list(CatalogSettings.objects.values().order_by("pk")),
        list(Holiday.objects.values().order_by("pk")),
        list(CarrierBlock.objects.values().order_by("pk")),
        list(ValueAddedService.objects.values().order_by("pk")),
        list(Plan.objects.values().order_by("pk")),
        list(Plan.included_services.through.objects.values().order_by("pk")),
        list(VanityGrade.objects.values().order_by("pk")),
    ]


# --- validation (pure) ---------------------------------------------------------


def test_the_example_catalog_is_valid():
    catalog = parse_catalog(read_document(EXAMPLE.read_text(encoding="utf-8")))
    assert len(catalog.plans) >= 8
    assert {p.term_months for p in catalog.plans} == set(TERMS)
    three_years = next(p for p in catalog.plans if p.code == "term-3y-3000")
    assert (three_years.price, three_years.term_months) == (Decimal("3000.00"), 36)
    # 「3000元/3年 0.12元/分钟」: the pool is price ÷ rate.
    assert three_years.included_minutes == three_years.price / Decimal("0.12")


def test_the_example_has_the_2026_state_council_holidays():
    catalog = parse_catalog(read_document(EXAMPLE.read_text(encoding="utf-8")))
    days: dict[str, int] = {}
    for h in catalog.holidays:
        if h.kind == "holiday":
            days[h.name] = days.get(h.name, 0) + 1
    assert days == {
        "元旦": 3,
        "春节": 9,
        "清明节": 3,
        "劳动节": 5,
        "端午节": 3,
        "中秋节": 3,
        "国庆节": 7,
    }
    workdays = sorted(str(h.date) for h in catalog.holidays if h.kind == "workday")
    assert workdays == [
        "2026-01-04",
        "2026-02-14",
        "2026-02-28",
        "2026-05-09",
        "2026-09-20",
        "2026-10-10",
    ]
    # A make-up working day is always a weekend day.
    assert all(
        h.date.isoweekday() >= 6 for h in catalog.holidays if h.kind == "workday"
    )


def test_every_error_is_listed_with_its_path():
    doc = small_catalog()
    doc["plans"].append(dict(doc["plans"][0], code="m299"))
    doc["plans"].append(dict(doc["plans"][0], code="bad"))
    doc["plans"][2] = {
        **doc["plans"][2],
        "price": "-1",
        "term_months": 6,
        "rates": {"inbound_peak": "0.1", "inbound_offpeak": "0.12345", "outbound": "x"},
        "included_services": ["ivr", "fax"],
    }
    doc["services"][0]["monthly_fee"] = True
    doc["settings"]["peak_end"] = 1200  # unquoted 20:00 in YAML 1.1
    doc["holidays"].append({"date": "2026-02-30", "kind": "feast"})
    doc["carrier_blocks"].append({"prefix": 4009, "carrier": "cmcc"})
    doc["vanity_grades"][0]["rules"] = [{"type": "repeat", "length": 12}]
    doc["vanity_grades"][0]["colour"] = "gold"
    with pytest.raises(CatalogError) as excinfo:
        parse_catalog(doc)
    assert excinfo.value.errors == [
        'settings.peak_end: not a time: write it quoted, as "HH:MM"',
        "holidays[1].date: not a date (YYYY-MM-DD)",
        "holidays[1].kind: must be one of holiday, workday",
        "carrier_blocks[1].prefix: must be 3 to 10 digits starting with 400, "
        "written in quotes",
        "carrier_blocks[1].carrier: must be one of unicom, mobile, telecom",
        "services[0].monthly_fee: not a decimal",
        "plans[2].term_months: must be one of 1, 12, 24, 36",
        "plans[2].price: must not be negative",
        "plans[2].rates.inbound_offpeak: has more than 4 decimal places",
        "plans[2].rates.outbound: not a decimal",
        "plans[2].included_services[1]: no value-added service has code fax",
        "vanity_grades[0].colour: unknown key",
        "vanity_grades[0].rules[0].length: must be a whole number from 2 to 7",
    ]


def test_missing_keys_duplicates_and_unknown_sections_are_errors():
    doc = small_catalog()
    del doc["plans"][0]["rates"]
    doc["plans"].append(dict(doc["plans"][0]))
    doc["vanity_grades"].append(dict(doc["vanity_grades"][0], code="other"))
    doc["prices"] = []
    with pytest.raises(CatalogError) as excinfo:
        parse_catalog(doc)
    errors = excinfo.value.errors
    assert errors[0].startswith("prices: unknown section")
    assert "plans[0].rates: is required" in errors
    assert "plans[1].rates: is required" in errors
    assert "plans[1].code: duplicate code m199 (also at plans[0])" in errors
    assert (
        "vanity_grades[1].priority: duplicate priority 900 (also at vanity_grades[0])"
        in errors
    )


def test_yaml_syntax_errors_and_duplicate_keys_name_the_line():
    with pytest.raises(CatalogError) as excinfo:
        read_document("plans:\n  - code: a\n    code: b\n")
    assert excinfo.value.errors == ["line 3, column 5: duplicate key 'code'"]
    with pytest.raises(CatalogError, match="line 1"):
        read_document('{"plans": [}', fmt="json")


def test_bare_yaml_numbers_are_read_exactly():
    doc = small_catalog()
    doc["plans"][0]["rates"]["outbound"] = 0.12
    doc["plans"][0]["price"] = 199
    plan = parse_catalog(doc).plans[0]
    assert (plan.rate_outbound, plan.price) == (Decimal("0.12"), Decimal("199"))


def test_a_plan_may_include_a_service_already_in_the_database():
    doc = {"plans": small_catalog()["plans"]}
    with pytest.raises(CatalogError):
        parse_catalog(doc)
    assert parse_catalog(doc, existing_service_codes=frozenset({"ivr"})).plans


def test_constants_agree_with_the_models():
    assert set(TAX_CATEGORIES) == set(TaxCategory.values)
    assert set(CARRIERS) == set(Carrier.values)
    assert set(HOLIDAY_KINDS) == set(Holiday.Kind.values)
    assert set(TERMS) == set(Plan.Term.values)


# --- loading ---------------------------------------------------------------


@pytest.mark.django_db
def test_a_good_file_creates_everything(tmp_path):
    out = StringIO()
    call_command("load_catalog", write(tmp_path, small_catalog()), stdout=out)
    plan = Plan.objects.get(code="m199")
    assert plan.rate_inbound_peak == Decimal("0.2200")
    assert list(plan.included_services.values_list("code", flat=True)) == ["ivr"]
    assert TaxRate.objects.get(category="basic").rate == Decimal("0.09")
    assert CatalogSettings.load().extra_answer_number_fee == Decimal("10.00")
    assert CarrierBlock.objects.get(prefix="4008").carrier == "telecom"
    assert VanityGrade.objects.get(code="supreme").rules == [
        {"type": "repeat", "length": 4}
    ]
    assert "plans: 1 created, 0 updated, 0 unchanged" in out.getvalue()


@pytest.mark.django_db
def test_loading_again_upserts_by_code(tmp_path):
    catalog_load(document=small_catalog())
    other = PlanFactory(code="kept")
    doc = small_catalog()
    doc["plans"][0]["price"] = "219.00"
    doc["plans"][0]["included_services"] = []
    report = catalog_load(document=doc)
    plan = Plan.objects.get(code="m199")
    assert plan.price == Decimal("219.00")
    assert not plan.included_services.exists()
    assert Plan.objects.filter(pk=other.pk).exists()  # not in the file: kept
    assert report.updated["plans"] == 1
    assert report.unchanged["services"] == 1
    assert Plan.objects.filter(code="m199").count() == 1


@pytest.mark.django_db
def test_a_file_with_errors_changes_nothing(tmp_path):
    catalog_load(document=small_catalog())
    before = db_state()
    doc = small_catalog()
    doc["plans"][0]["price"] = "299.00"  # a valid change …
    doc["services"].append({"code": "rec", "name_zh": "录音", "name_en": "Rec"})
    doc["vanity_grades"][0]["rules"] = [{"type": "repeat"}]  # … and two errors
    err = StringIO()
    with pytest.raises(CommandError, match="2 error"):
        call_command("load_catalog", write(tmp_path, doc), stderr=err)
    assert "services[1].monthly_fee: is required" in err.getvalue()
    assert "vanity_grades[0].rules[0].length" in err.getvalue()
    assert db_state() == before


@pytest.mark.django_db
def test_a_broken_file_on_an_empty_database_creates_nothing(tmp_path):
    doc = small_catalog()
    doc["plans"][0]["rates"]["outbound"] = "abc"
    with pytest.raises(CommandError):
        call_command("load_catalog", write(tmp_path, doc, "c.json"), stderr=StringIO())
    assert db_state() == [[], [], [], [], [], [], [], []]


@pytest.mark.django_db
def test_an_unreadable_file_is_a_clear_error(tmp_path):
    with pytest.raises(CommandError, match="Cannot read"):
        call_command("load_catalog", str(tmp_path / "missing.yaml"))


@pytest.mark.django_db
def test_changing_a_grade_fee_follows_on_its_numbers():
    catalog_load(document=small_catalog())
    grade = VanityGrade.objects.get(code="supreme")
    number = PhoneNumberFactory(grade=grade, selection_fee=grade.selection_fee)
    doc = small_catalog()
    doc["vanity_grades"][0]["selection_fee"] = "18000.00"
    catalog_load(document=doc)
    number.refresh_from_db()
    assert number.selection_fee == Decimal("18000.00")


@pytest.mark.django_db
def test_changed_rules_are_reported_for_regrading():
    VanityGradeFactory(code="supreme", rules=[{"type": "repeat", "length": 3}])
    report = catalog_load(document=small_catalog())
    assert report.regrade_needed == ["supreme"]
    assert catalog_load(document=small_catalog()).regrade_needed == []


# --- dumping -----------------------------------------------------------------


@pytest.mark.django_db
def test_dump_load_dump_is_identical(tmp_path):
    call_command("load_catalog", str(EXAMPLE), stdout=StringIO())
    first = StringIO()
    call_command("dump_catalog", stdout=first)
    dumped = tmp_path / "dumped.yaml"
    dumped.write_text(first.getvalue(), encoding="utf-8")
    # Reload into an emptied catalog, then dump again.
    Plan.included_services.through.objects.all().delete()
    for model in (Plan, ValueAddedService, VanityGrade, Holiday, CarrierBlock, TaxRate):
        model.objects.all().delete()
    CatalogSettings.objects.all().delete()
    call_command("load_catalog", str(dumped), stdout=StringIO())
    second = StringIO()
    call_command("dump_catalog", stdout=second)
    assert second.getvalue() == first.getvalue()
    assert "term-3y-3000" in first.getvalue()


@pytest.mark.django_db
def test_json_dump_loads_back(tmp_path):
    catalog_load(document=small_catalog())
    out = tmp_path / "catalog.json"
    call_command("dump_catalog", output=str(out))
    document = json.loads(out.read_text(encoding="utf-8"))
    assert document["plans"][0]["rates"]["outbound"] == "0.1800"
    assert document["tax_rates"] == {"basic": "0.09", "value_added": "0.06"}
    report = catalog_load(document=document)
    assert not report.created and not report.updated


# --- property: the document form is lossless ------------------------------------

codes = st.from_regex(r"[a-z][a-z0-9-]{0,12}", fullmatch=True)
names = st.text(alphabet=st.characters(categories=["L", "N"]), min_size=1, max_size=20)


def decimals(places, max_value):
    return st.decimals(min_value=0, max_value=max_value, places=places, allow_nan=False)


services = st.builds(
    ServiceData,
    code=codes,
    name_zh=names,
    name_en=names,
    monthly_fee=decimals(2, 99999),
    order=st.integers(0, 1000),
)


@st.composite
def catalogs(draw):
    svc = draw(st.lists(services, max_size=4, unique_by=lambda s: s.code))
    svc_codes = [s.code for s in svc]
    plans = draw(
        st.lists(
            st.builds(
                PlanData,
                code=codes,
                name_zh=names,
                name_en=names,
                term_months=st.sampled_from([1, 12, 24, 36]),
                price=decimals(2, 999999),
                included_minutes=st.integers(0, 10**6),
                rate_inbound_peak=decimals(4, 9),
                rate_inbound_offpeak=decimals(4, 9),
                rate_outbound=decimals(4, 9),
                included_answer_numbers=st.integers(0, 20),
                included_services=st.lists(
                    st.sampled_from(svc_codes) if svc_codes else st.nothing(),
                    unique=True,
                ).map(lambda c: tuple(sorted(c))),
                active=st.booleans(),
                order=st.integers(0, 1000),
            ),
            max_size=4,
            unique_by=lambda p: p.code,
        )
    )
    grades = draw(
        st.lists(
            st.builds(
                GradeData,
                code=codes,
                name_zh=names,
                name_en=names,
                selection_fee=decimals(2, 99999),
                min_monthly=decimals(2, 999),
                priority=st.integers(0, 10000),
                rules=st.just([{"type": "repeat", "length": 4}]),
            ),
            max_size=3,
            unique_by=(lambda g: g.code, lambda g: g.priority),
        )
    )
    return Catalog(
        tax_rates={"basic": draw(decimals(4, 1))},
        services=svc,
        plans=plans,
        vanity_grades=grades,
    )


@settings(max_examples=50, deadline=None)
@given(catalog=catalogs())
def test_document_then_parse_gives_the_same_catalog(catalog):
    document = catalog_document(catalog)
    parsed = parse_catalog(document)
    assert catalog_document(parsed) == document
    assert [p.price for p in parsed.plans] == [
        p.price for p in sorted(catalog.plans, key=lambda p: (p.order, p.code))
    ]


@pytest.mark.django_db
def test_a_dry_run_reports_but_changes_nothing(tmp_path):
    catalog_load(document=small_catalog())
    before = db_state()
    doc = small_catalog()
    doc["plans"][0]["price"] = "249.00"
    out = StringIO()
    call_command("load_catalog", write(tmp_path, doc), "--dry-run", stdout=out)
    assert "plans: 0 created, 1 updated, 0 unchanged" in out.getvalue()
    assert "nothing was changed" in out.getvalue()
    assert db_state() == before
