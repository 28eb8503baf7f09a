"""import_numbers and regrade_numbers: counts, duplicates, invalid lines."""

from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import translation

from plans.inventory_services import (
    ImportRefused,
    InvalidInput,
    csv_lines,
    numbers_import,
    numbers_regrade,
    parse_range,
    range_lines,
)
from plans.models import CarrierBlock, PhoneNumber, VanityGrade
from tests.factories import PhoneNumberFactory, VanityGradeFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _english():
    with translation.override("en"):
        yield


@pytest.fixture
def stock_catalog(db):
    for prefix, carrier in [
        ("4001", "mobile"),
        ("4006", "unicom"),
        ("4008", "telecom"),
    ]:
        CarrierBlock.objects.create(prefix=prefix, carrier=carrier)
    return {
        "supreme": VanityGradeFactory(
            code="supreme",
            priority=900,
            selection_fee=Decimal("20000.00"),
            rules=[{"type": "repeat", "length": 4}],
        ),
        "lucky": VanityGradeFactory(
            code="lucky",
            priority=500,
            selection_fee=Decimal("500.00"),
            rules=[{"type": "lucky_ending", "endings": ["8", "168"]}],
        ),
    }


def import_csv(tmp_path, text, *args):
    path = tmp_path / "numbers.csv"
    path.write_text(text, encoding="utf-8")
    out, err = StringIO(), StringIO()
    call_command("import_numbers", str(path), *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_csv_numbers_in_any_format_are_stored_canonically(stock_catalog, tmp_path):
    out, _err = import_csv(
        tmp_path, "number\n400-810-8888\n4006 123 168\n\n4001234567,extra column\n"
    )
    rows = dict(PhoneNumber.objects.values_list("number", "carrier"))
    assert rows == {
        "4008108888": "telecom",
        "4006123168": "unicom",
        "4001234567": "mobile",
    }
    assert "3 imported, 0 skipped as duplicates, 0 invalid" in out


def test_every_number_is_graded_with_fee_and_reason(stock_catalog):
    numbers_import(lines=range_lines(4008108886, 4008108889))
    graded = {
        n.number: (n.grade and n.grade.code, n.grade_reason, n.selection_fee)
        for n in PhoneNumber.objects.select_related("grade")
    }
    assert graded["4008108888"][0] == "supreme"
    assert graded["4008108888"][2] == Decimal("20000.00")
    assert "8888" in graded["4008108888"][1]
    assert graded["4008108886"] == (None, "", Decimal("0.00"))
    assert graded["4008108889"][0] is None
    assert PhoneNumber.objects.get(number="4008108886").has_four is False


def test_grade_reasons_are_stored_in_the_site_language(stock_catalog):
    numbers_import(lines=range_lines(4008108888, 4008108888))
    assert PhoneNumber.objects.get().grade_reason == "尾号 8888（AAAA）"


def test_counts_per_grade_are_reported(stock_catalog):
    report = numbers_import(lines=range_lines(4008100000, 4008109999))
    assert report.imported == 10_000
    # 10 AAAA tails; numbers ending in 8 (1,000) minus the one AAAA 8888.
    assert report.per_grade == {"supreme": 10, "lucky": 999, "ordinary": 8991}
    assert PhoneNumber.objects.filter(grade__code="lucky").count() == 999


def test_duplicates_in_stock_and_in_the_input_are_skipped(stock_catalog, tmp_path):
    PhoneNumberFactory(number="4008100001", status="subscribed")
    out, _err = import_csv(
        tmp_path, "4008100001\n4008100002\n400-810-0002\n4008100003\n4008100002\n"
    )
    assert "4 imported" not in out
    assert "2 imported, 3 skipped as duplicates, 0 invalid" in out
    assert PhoneNumber.objects.count() == 3
    # The number already in stock is untouched.
    assert PhoneNumber.objects.get(number="4008100001").status == "subscribed"


def test_duplicates_across_batches_are_skipped(stock_catalog):
    lines = [("l1", "4008100001"), ("l2", "4008100002"), ("l3", "4008100001")]
    report = numbers_import(lines=lines, batch_size=2)
    assert (report.imported, report.duplicates) == (2, 1)


def test_invalid_lines_are_listed_and_nothing_is_imported(stock_catalog, tmp_path):
    text = "4008100001\n4.008E+09\n4008100002\n8008100003\n4003100004\n"
    with pytest.raises(CommandError, match="3 invalid line"):
        import_csv(tmp_path, text)
    assert PhoneNumber.objects.count() == 0


def test_invalid_lines_name_their_line_numbers(stock_catalog):
    lines = csv_lines(StringIO("4008100001\n4.008E+09\n\n4003100004\n"))
    with pytest.raises(InvalidInput) as excinfo:
        numbers_import(lines=lines)
    report = excinfo.value.report
    assert [where for where, _msg in report.errors] == ["line 2", "line 4"]
    assert "4.008E+09" in report.errors[0][1]
    assert "no carrier block" in report.errors[1][1]
    assert (report.read, report.blank, report.invalid) == (3, 1, 2)


def test_skip_invalid_imports_the_valid_lines(stock_catalog, tmp_path):
    out, err = import_csv(tmp_path, "4008100001\nabc\n4008100002\n", "--skip-invalid")
    assert "line 2: " in err
    assert "2 imported, 0 skipped as duplicates, 1 invalid" in out
    assert PhoneNumber.objects.count() == 2


def test_a_range_imports_every_number_once(stock_catalog):
    out = StringIO()
    call_command("import_numbers", "--range", "4008100000-4008100999", stdout=out)
    call_command("import_numbers", "--range", "4008100500-4008101499", stdout=out)
    assert PhoneNumber.objects.count() == 1500
    assert "500 imported, 500 skipped as duplicates" in out.getvalue()


@pytest.mark.parametrize(
    "text",
    ["4008100000", "4008100999-4008100000", "5008100000-5008100999", "400810-400811"],
)
def test_bad_ranges_are_refused(text):
    with pytest.raises(ImportRefused):
        parse_range(text)


def test_a_range_outside_the_carrier_blocks_is_refused(stock_catalog):
    with pytest.raises(CommandError, match="invalid line"):
        call_command(
            "import_numbers",
            "--range",
            "4003000000-4003000009",
            stdout=StringIO(),
            stderr=StringIO(),
        )
    assert PhoneNumber.objects.count() == 0


def test_import_needs_carrier_blocks(db):
    with pytest.raises(CommandError, match="carrier blocks"):
        call_command("import_numbers", "--range", "4008100000-4008100009")


def test_import_needs_input(db):
    with pytest.raises(CommandError, match="CSV"):
        call_command("import_numbers")


def test_the_postgresql_path_is_the_one_under_test():
    assert connection.vendor == "postgresql"


# --- regrade -----------------------------------------------------------------


def test_regrade_applies_changed_rules_to_available_numbers_only(stock_catalog):
    numbers_import(lines=range_lines(4008100000, 4008100999))
    held = PhoneNumber.objects.get(number="4008100168")
    held.status = PhoneNumber.Status.HELD
    held.save(update_fields=["status"])
    sold = PhoneNumber.objects.get(number="4008100008")
    sold.status = PhoneNumber.Status.SUBSCRIBED
    sold.save(update_fields=["status"])
    resting = PhoneNumber.objects.get(number="4008100018")
    resting.status = PhoneNumber.Status.QUARANTINE
    resting.save(update_fields=["status"])
    lucky = stock_catalog["lucky"]
    lucky.rules = [{"type": "lucky_ending", "endings": ["168"]}]
    lucky.save()

    out = StringIO()
    call_command("regrade_numbers", stdout=out)

    assert PhoneNumber.objects.get(number="4008100028").grade is None
    for kept in (held, sold, resting):
        row = PhoneNumber.objects.get(pk=kept.pk)
        assert row.grade == lucky
        assert row.selection_fee == Decimal("500.00")
    # 100 numbers end in 8 here; 0888 is AAA-free and not supreme, so lucky
    # before; after, only …168 is lucky and that one is held.
    assert PhoneNumber.objects.filter(grade=lucky).count() == 3
    assert "97 changed" in out.getvalue()
    assert "lucky                +0 −97" in out.getvalue()
    assert "ordinary             +97 −0" in out.getvalue()


def test_regrade_with_unchanged_rules_changes_nothing(stock_catalog):
    numbers_import(lines=range_lines(4008100000, 4008100999))
    out = StringIO()
    call_command("regrade_numbers", "--batch-size", "300", stdout=out)
    assert "Checked 1,000 available numbers; 0 changed." in out.getvalue()


def test_regrade_drops_a_deactivated_grade(stock_catalog):
    numbers_import(lines=range_lines(4008108888, 4008108888))
    VanityGrade.objects.filter(code="supreme").update(is_active=False)
    call_command("regrade_numbers", stdout=StringIO())
    number = PhoneNumber.objects.get()
    assert (number.grade.code, number.selection_fee) == ("lucky", Decimal("500.00"))


# --- demo ------------------------------------------------------------------------


def test_the_demo_seed_is_idempotent(db):
    from plans import demo

    out = StringIO()
    demo.seed(stdout=out)
    demo.seed(stdout=out)
    assert PhoneNumber.objects.count() == 10_000
    assert PhoneNumber.objects.filter(grade__isnull=False).count() > 0
    assert set(PhoneNumber.objects.values_list("carrier", flat=True)) == {
        "telecom",
        "unicom",
        "mobile",
    }
    assert "0 added, 8000 already in stock" in out.getvalue()


@pytest.mark.django_db(transaction=True)
def test_a_number_held_while_regrading_keeps_its_grade(stock_catalog):
    """A hold commits while regrade waits on the row: the hold wins."""
    import threading

    from django.db import connection as main_connection
    from django.db import transaction

    numbers_import(lines=range_lines(4008100008, 4008100009))
    lucky = stock_catalog["lucky"]
    VanityGrade.objects.filter(pk=lucky.pk).update(
        rules=[{"type": "lucky_ending", "endings": ["9"]}]
    )
    locked, regrade_started, done = (threading.Event() for _ in range(3))
    results = {}

    def hold():
        try:
            with transaction.atomic():
                number = PhoneNumber.objects.select_for_update().get(
                    number="4008100008"
                )
                number.status = PhoneNumber.Status.HELD
                number.save(update_fields=["status"])
                locked.set()
                regrade_started.wait(5)
                # Give the regrade time to reach the locked row and wait on it.
                done.wait(0.5)
        finally:
            main_connection.close()

    def regrade():
        try:
            locked.wait(5)
            regrade_started.set()
            results["report"] = numbers_regrade()
        finally:
            done.set()
            main_connection.close()

    threads = [threading.Thread(target=hold), threading.Thread(target=regrade)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)

    held = PhoneNumber.objects.get(number="4008100008")
    assert (held.status, held.grade_id) == ("held", lucky.pk)
    assert PhoneNumber.objects.get(number="4008100009").grade_id == lucky.pk
    assert results["report"].changed == 1


def test_the_portable_path_stores_what_the_copy_path_stores(stock_catalog, monkeypatch):
    """SQLite (the embedded demo) imports through bulk_create; same rows."""
    from plans import inventory_services

    numbers_import(lines=range_lines(4008100000, 4008100499))
    via_copy = list(
        PhoneNumber.objects.order_by("number").values_list(
            "number", "carrier", "grade_id", "grade_reason", "selection_fee", "has_four"
        )
    )
    PhoneNumber.objects.all().delete()
    monkeypatch.setattr(
        inventory_services,
        "_insert_postgresql",
        lambda rows, _text, report, codes: inventory_services._insert_orm(
            rows, None, report, codes
        ),
    )
    report = numbers_import(lines=range_lines(4008100000, 4008100499))
    again = numbers_import(lines=range_lines(4008100000, 4008100499))
    via_orm = list(
        PhoneNumber.objects.order_by("number").values_list(
            "number", "carrier", "grade_id", "grade_reason", "selection_fee", "has_four"
        )
    )
    assert via_orm == via_copy
    assert report.per_grade == {"supreme": 1, "lucky": 50, "ordinary": 449}
    assert (again.imported, again.duplicates) == (0, 500)
