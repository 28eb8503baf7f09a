"""Number search at 1,000,000 numbers: p50/p95/max per kind of search.

    .venv/bin/python -m bench search            # reuses the data when present
    BENCH_SEARCH_FRESH=1 .venv/bin/python -m bench search

Loads the example catalog and imports a million numbers with the real
importer (``numbers_import``, graded by the catalog's vanity grades) into its
own PostgreSQL database — search indexes dropped during the load and rebuilt
after — marks 3% as sold, then runs a
realistic mix of searches through ``plans.selectors.number_search`` — the
function the search page calls, count included — and prints the timings and
the EXPLAIN ANALYZE plan of one search of each kind. Target: p95 < 50 ms.
"""

from __future__ import annotations

import importlib
import os
import random
import time
from decimal import Decimal

from bench import common
from bench.common import percentile, report, timed

# Its own database: other benchmarks load subscriptions and calls that would
# pin numbers in place, and a million numbers would slow theirs.
DATABASE_URL = os.environ.get(
    "BENCH_SEARCH_DATABASE_URL",
    "postgres://postgres@127.0.0.1:5432/hotline400_bench_search",
)
N = int(os.environ.get("BENCH_SEARCH_NUMBERS", "1000000"))
RUNS_PER_KIND = int(os.environ.get("BENCH_SEARCH_RUNS", "60"))
TARGET_MS = 50.0
# Three carriers' blocks, like a real stock: 500k + 300k + 200k numbers.
RANGES = [
    (4008000000, 0.5),
    (4001000000, 0.3),
    (4006000000, 0.2),
]


def _search_indexes() -> list[tuple[str, str]]:
    """The search indexes of the plans migrations, to rebuild after a load."""
    names = [
        "0003_number_search_pg_indexes",
        "0004_number_search_tokens_carrier",
        "0005_number_search_covering",
    ]
    indexes, dropped = [], set()
    for name in names:
        module = importlib.import_module(f"plans.migrations.{name}")
        indexes += module.INDEXES
        dropped |= set(getattr(module, "DROPPED", ()))
    return [(n, sql) for n, sql in indexes if n not in dropped]


def load(n: int) -> None:
    """The example catalog, then ``n`` numbers through the real importer
    (graded by the catalog's vanity grades), 3% of them already sold."""
    from django.conf import settings
    from django.db import connection

    from plans.catalog import read_document
    from plans.catalog_services import catalog_load
    from plans.inventory_services import numbers_import, range_lines

    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM plans_phonenumber")
        have = cur.fetchone()[0]
    fresh = os.environ.get("BENCH_SEARCH_FRESH") == "1"
    if have == n and not fresh:
        report("numbers already loaded", f"{have:,}")
        return
    catalog = (settings.BASE_DIR / "catalog" / "example.yaml").read_text("utf-8")
    catalog_load(document=read_document(catalog))
    indexes = _search_indexes()
    with timed() as t:
        with connection.cursor() as cur:
            # This database is the benchmark's own: nothing else lives here.
            cur.execute("TRUNCATE plans_phonenumber CASCADE")
            for name, _sql in indexes:
                cur.execute(f"DROP INDEX IF EXISTS {name}")
        for start, share in RANGES:
            count = int(n * share)
            numbers_import(lines=range_lines(start, start + count - 1))
        with connection.cursor() as cur:
            cur.execute(
                "UPDATE plans_phonenumber SET status = 'subscribed' "
                "WHERE random() < 0.03"
            )
            for _name, sql in indexes:
                cur.execute(sql)
            cur.execute("VACUUM ANALYZE plans_phonenumber")
    report("numbers imported and graded", f"{n:,}")
    report("load time (import + index build)", f"{t():.1f}", "s")
    with connection.cursor() as cur:
        cur.execute(
            "SELECT coalesce(g.code, 'ordinary'), count(*) FROM plans_phonenumber p "
            "LEFT JOIN plans_vanitygrade g ON g.id = p.grade_id GROUP BY 1 ORDER BY 2"
        )
        for code, count in cur.fetchall():
            report(f"  grade {code}", f"{count:,}")


def _digits(rng: random.Random, k: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(k))


def mix(rng: random.Random):
    """Search kinds: name → a function giving (criteria, page)."""
    from plans.models import VanityGrade
    from plans.search import pattern_to_like
    from plans.selectors import ORDINARY, SearchCriteria

    lucky = ["8", "88", "168", "518", "520", "666", "888", "8888", "1688"]
    codes = list(VanityGrade.objects.values_list("code", flat=True))

    def whole_pattern():
        while True:
            tail = "".join(
                "*" if rng.random() < 0.4 else rng.choice("0123456789888")
                for _ in range(7)
            )
            if sum(c.isdigit() for c in tail) >= 3:
                break
        return SearchCriteria(pattern=pattern_to_like("400" + tail)), 1

    def famous_pattern():
        p = rng.choice(
            [
                "400*8*8888",
                "400***6666",
                "4008**1688",
                "400*1*5*8*",
                "400****888",
                "4001***520",
                "400******8",
            ]
        )
        return SearchCriteria(pattern=pattern_to_like(p)), 1

    def anywhere_pattern():
        k = rng.choice([3, 4, 5])
        body = list(_digits(rng, k))
        body[rng.randrange(1, k - 1)] = "*"
        return SearchCriteria(pattern=pattern_to_like("".join(body))), 1

    def contains():
        return SearchCriteria(
            contains=rng.choice([*lucky, _digits(rng, 3), _digits(rng, 4)])
        ), 1

    def ends_with():
        return SearchCriteria(
            ends_with=rng.choice([*lucky, _digits(rng, 2), _digits(rng, 4)])
        ), 1

    def grade():
        return SearchCriteria(
            grade=rng.choice([*codes, ORDINARY]),
            sort=rng.choice(["number", "fee", "-fee"]),
        ), 1

    def no_four():
        return SearchCriteria(
            no_four=True,
            ends_with=rng.choice(["", "8", "88"]),
            carrier=rng.choice(["", "mobile"]),
        ), 1

    def fee_filter():
        return SearchCriteria(
            max_fee=Decimal(rng.choice([0, 100, 500, 1500, 6000])),
            sort=rng.choice(["fee", "-fee", "number"]),
        ), 1

    def sorts():
        return SearchCriteria(
            sort=rng.choice(["number", "fee", "-fee"]),
            carrier=rng.choice(["", "telecom", "unicom"]),
        ), 1

    def deep_page():
        criteria, _ = rng.choice([sorts, contains, no_four, grade, fee_filter])()
        return criteria, rng.choice([20, 35, 50])

    return {
        "pattern (whole number)": whole_pattern,
        "pattern (well-known)": famous_pattern,
        "pattern (anywhere)": anywhere_pattern,
        "contains": contains,
        "ends with": ends_with,
        "grade": grade,
        "no 4": no_four,
        "max fee": fee_filter,
        "sort only": sorts,
        "deep page": deep_page,
    }


def explain(criteria, page: int) -> str:
    from plans.selectors import COUNT_CAP, PER_PAGE, number_search_queryset

    qs = number_search_queryset(criteria)
    offset = (page - 1) * PER_PAGE
    page_plan = qs[offset : offset + PER_PAGE + 1].explain(analyze=True)
    count_plan = qs[: COUNT_CAP + 1].explain(analyze=True)
    return f"-- page {page}\n{page_plan}\n-- capped count\n{count_plan}"


def main() -> int:
    common.BENCH_DATABASE_URL = DATABASE_URL
    common.setup_django()
    from django.db import connection, reset_queries

    from plans.selectors import number_search

    load(N)
    rng = random.Random(400)
    kinds = mix(rng)
    # Warm the caches the way a running server is warm.
    for make in kinds.values():
        for _ in range(3):
            criteria, page = make()
            number_search(criteria=criteria, page=page)

    all_ms: list[float] = []
    worst_kind = ("", 0.0)
    print(f"\n{'kind':<26}{'runs':>6}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}")
    examples = {}
    for name, make in kinds.items():
        times = []
        for _ in range(RUNS_PER_KIND):
            criteria, page = make()
            start = time.perf_counter()
            number_search(criteria=criteria, page=page)
            times.append((time.perf_counter() - start) * 1000)
            if name not in examples or times[-1] > examples[name][2]:
                examples[name] = (criteria, page, times[-1])
            reset_queries()
        all_ms.extend(times)
        p95 = percentile(times, 95)
        if p95 > worst_kind[1]:
            worst_kind = (name, p95)
        print(
            f"{name:<26}{len(times):>6}{percentile(times, 50):>9.1f}"
            f"{p95:>9.1f}{max(times):>9.1f}"
        )
    p95_all = percentile(all_ms, 95)
    print()
    report("overall searches", len(all_ms))
    report("overall p50", f"{percentile(all_ms, 50):.1f}", "ms")
    report("overall p95", f"{p95_all:.1f}", "ms")
    report("overall max", f"{max(all_ms):.1f}", "ms")
    report("worst kind by p95", f"{worst_kind[0]} ({worst_kind[1]:.1f} ms)")
    report("p95 / target", f"{p95_all / TARGET_MS:.2f}")

    print("\nQuery plans (the slowest search of each kind, run again):")
    for name, (criteria, page, ms) in examples.items():
        print(f"\n=== {name} (took {ms:.1f} ms), page {page}: {criteria} ===")
        print(explain(criteria, page))
    connection.close()
    ok = p95_all < TARGET_MS and worst_kind[1] < TARGET_MS
    verdict = "OK" if ok else "MISSED"
    print(f"\n{verdict}: p95 {p95_all:.1f} ms (target < {TARGET_MS} ms)")
    return 0 if ok else 1
