"""Demo catalog and number stock (called by seed_demo after accounts.demo).

Loads ``catalog/example.yaml`` and imports 10,000 graded numbers. Idempotent:
the catalog is upserted by code and numbers already in stock are skipped.
"""

from pathlib import Path

from django.conf import settings

from plans.catalog import read_document
from plans.catalog_services import catalog_load
from plans.inventory_services import numbers_import, parse_range, range_lines

EXAMPLE_CATALOG = Path(settings.BASE_DIR) / "catalog" / "example.yaml"

#: 8,000 China Telecom numbers plus a block each of Unicom and Mobile.
DEMO_RANGES = [
    "4008100000-4008107999",
    "4006880000-4006880999",
    "4001680000-4001680999",
]


def seed_catalog(*, stdout) -> None:
    document = read_document(EXAMPLE_CATALOG.read_text(encoding="utf-8"))
    report = catalog_load(document=document)
    for line in report.lines():
        stdout.write(f"  catalog {line}")


def seed_numbers(*, stdout) -> None:
    for text in DEMO_RANGES:
        lo, hi = parse_range(text)
        report = numbers_import(lines=range_lines(lo, hi))
        grades = ", ".join(f"{k} {v}" for k, v in report.per_grade.most_common())
        stdout.write(
            f"  numbers {text}: {report.imported} added, "
            f"{report.duplicates} already in stock" + (f" ({grades})" if grades else "")
        )


def seed(*, stdout) -> None:
    seed_catalog(stdout=stdout)
    seed_numbers(stdout=stdout)
