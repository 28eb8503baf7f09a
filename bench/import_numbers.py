"""Import a million numbers: ``python -m bench import_numbers``.

Runs on its own PostgreSQL database (``hotline400_bench_import``; override with
BENCH_IMPORT_DATABASE_URL) so it never disturbs the search benchmark's stock.
Loads the example catalog, empties the stock, imports the range
4008000000–4008999999 through ``numbers_import`` (what ``import_numbers
--range`` runs), then imports it again (all duplicates) and re-grades it.
Target: the million in well under a minute.
"""

import os
from pathlib import Path

os.environ["BENCH_DATABASE_URL"] = os.environ.get(
    "BENCH_IMPORT_DATABASE_URL",
    "postgres://postgres@127.0.0.1:5432/hotline400_bench_import",
)

from bench.common import peak_rss_mb, report, setup_django, timed

FIRST, LAST = 4008000000, 4008999999
TARGET_SECONDS = 60


def main() -> int:
    setup_django()
    from django.db import connection

    from plans.catalog import read_document
    from plans.catalog_services import catalog_load
    from plans.grading import GradeSpec, compile_grades
    from plans.inventory_services import numbers_import, numbers_regrade, range_lines
    from plans.models import PhoneNumber, VanityGrade

    example = Path(__file__).resolve().parent.parent / "catalog" / "example.yaml"
    catalog_load(document=read_document(example.read_text(encoding="utf-8")))
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {PhoneNumber._meta.db_table} CASCADE")
    total = LAST - FIRST + 1
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_indexes WHERE tablename = %s",
            [PhoneNumber._meta.db_table],
        )
        report("indexes maintained on the number table", cursor.fetchone()[0])

    specs = [
        GradeSpec(g.code, g.priority, g.rules, g.selection_fee)
        for g in VanityGrade.objects.filter(is_active=True)
    ]
    grader = compile_grades(specs)
    with timed() as t:
        for n in range(FIRST, LAST + 1):
            grader(str(n))
    report("grading only (pure Python)", f"{total / t():,.0f}", "numbers/s")

    with timed() as t:
        result = numbers_import(lines=range_lines(FIRST, LAST))
    seconds = t()
    report("numbers imported", f"{result.imported:,}")
    report("import time", f"{seconds:.1f}", "s")
    report("import rate", f"{total / seconds:,.0f}", "numbers/s")
    for code, count in sorted(result.per_grade.items(), key=lambda x: -x[1]):
        report(f"  grade {code}", f"{count:,}", f"({count / total:.2%})")

    with timed() as t:
        again = numbers_import(lines=range_lines(FIRST, LAST))
    report("re-import (all duplicates)", f"{t():.1f}", "s")
    report("  skipped as duplicates", f"{again.duplicates:,}")

    with timed() as t:
        regraded = numbers_regrade()
    report("regrade (no rule change)", f"{t():.1f}", "s")
    report("  checked / changed", f"{regraded.checked:,} / {regraded.changed:,}")
    report("peak memory", f"{peak_rss_mb():.0f}", "MB")
    ratio = seconds / TARGET_SECONDS
    report("import time / 60 s target", f"{ratio:.2f}")
    ok = result.imported == total and again.imported == 0 and ratio < 1
    return 0 if ok else 1
