"""The number inventory: importing 400 numbers and re-grading the stock.

``numbers_import`` streams numbers (from a CSV or ranges) in fixed-size
batches: canonicalise, assign the carrier by block, grade, insert — skipping
numbers already in stock or repeated in the input. Memory stays bounded
whatever the input size. On PostgreSQL each batch goes through COPY into a
temporary table and one ``INSERT … ON CONFLICT DO NOTHING RETURNING``, which
also gives exact counts of what was inserted; elsewhere (the embedded SQLite
demo) it uses ``bulk_create``.

The whole import is one transaction: when the input has invalid lines it
writes nothing (unless ``skip_invalid``), and reports each line by number.
"""

from __future__ import annotations

import csv
import io
import logging
import queue
import re
import threading
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import islice
from typing import NamedTuple

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Max, Min
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from plans.grading import GradeSpec, compile_grades, has_four
from plans.models import CarrierBlock, PhoneNumber, VanityGrade
from plans.numbers import CarrierLookup, InvalidNumber, canonicalize_400

logger = logging.getLogger(__name__)

BATCH_SIZE = 20_000
ANALYZE_AFTER = 50_000
MAX_RANGE = 10_000_000
#: Errors kept for the report; the rest are only counted.
MAX_REPORTED_ERRORS = 200
ORDINARY = "ordinary"
#: First cells accepted as a header line (case-insensitive).
HEADERS = {"number", "numbers", "400 number", "phone", "号码", "400号码", "400 号码"}

_RANGE = re.compile(r"\s*(\d{10})\s*(?:-|–|~|\.\.)\s*(\d{10})\s*")


class ImportRefused(ValueError):
    """The import as a whole cannot run (bad range, no grades …)."""


class InvalidInput(ValueError):
    """Lines were invalid and nothing was written; ``report`` says which."""

    def __init__(self, report: ImportReport):
        super().__init__(
            _("%(count)s invalid line(s); nothing was imported.")
            % {"count": report.invalid}
        )
        self.report = report


@dataclass
class ImportReport:
    read: int = 0
    imported: int = 0
    duplicates: int = 0
    invalid: int = 0
    blank: int = 0
    per_grade: Counter = field(default_factory=Counter)
    errors: list[tuple[str, str]] = field(default_factory=list)

    def reject(self, where: str, message: str) -> None:
        self.invalid += 1
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append((where, message))


@dataclass
class RegradeReport:
    checked: int = 0
    changed: int = 0
    gained: Counter = field(default_factory=Counter)
    lost: Counter = field(default_factory=Counter)


# ---------------------------------------------------------------------------
# Input
# ---------------------------------------------------------------------------


def parse_range(text: str) -> tuple[int, int]:
    """``"4008100000-4008199999"`` → the inclusive bounds as integers."""
    match = _RANGE.fullmatch(text)
    if not match:
        raise ImportRefused(
            _(
                "“%(range)s” is not a range: write two 10-digit numbers, "
                "e.g. 4008100000-4008199999."
            )
            % {"range": text}
        )
    lo, hi = match[1], match[2]
    for value in (lo, hi):
        try:
            canonicalize_400(value)
        except InvalidNumber as exc:
            raise ImportRefused(str(exc)) from exc
    if int(hi) < int(lo):
        raise ImportRefused(
            _("The range %(range)s ends before it starts.") % {"range": text}
        )
    if int(hi) - int(lo) + 1 > MAX_RANGE:
        raise ImportRefused(
            _("The range %(range)s has more than %(max)s numbers.")
            % {"range": text, "max": f"{MAX_RANGE:,}"}
        )
    return int(lo), int(hi)


def range_lines(lo: int, hi: int) -> Iterator[tuple[str, str]]:
    """Numbers of an inclusive range, as (where, text) pairs."""
    for n in range(lo, hi + 1):
        text = str(n)
        yield text, text


def csv_lines(stream: Iterable[str]) -> Iterator[tuple[str, str | None]]:
    """(where, first cell) per CSV row; None for blank rows. A first row
    whose first cell is a known header ("number", "号码" …) is skipped."""
    for row_number, row in enumerate(csv.reader(stream), start=1):
        cell = row[0].strip() if row else ""
        if row_number == 1 and cell.lower() in HEADERS:
            continue
        where = _("line %(n)s") % {"n": row_number}
        blank = not any(c.strip() for c in row)
        yield where, None if blank else cell


# ---------------------------------------------------------------------------
# Grading set-up
# ---------------------------------------------------------------------------


def _grader():
    """The active grades compiled once, with reasons in the site language."""
    grades = list(VanityGrade.objects.filter(is_active=True))
    specs = [GradeSpec(g.code, g.priority, g.rules, g.selection_fee) for g in grades]
    with translation.override(settings.LANGUAGE_CODE):
        grader = compile_grades(specs)
    return grader, {g.code: g.pk for g in grades}


# ---------------------------------------------------------------------------
# Import
# ---------------------------------------------------------------------------


class _Row(NamedTuple):
    number: str
    carrier: str
    grade_code: str | None
    grade_id: int | None
    reason: str
    selection_fee: Decimal
    has_four: bool


_DONE = object()


def _batches(lines, *, report, carrier_of, grader, grade_ids, batch_size, prepare):
    """Pure: (where, text) pairs → batches of unique graded rows, each with
    what the writer prepared from it (the COPY text). Counts blank, invalid
    and in-batch duplicate lines into ``report``."""

    def rows() -> Iterator[_Row]:
        for where, text in lines:
            if text is None:
                report.blank += 1
                continue
            report.read += 1
            try:
                number = canonicalize_400(text)
            except InvalidNumber as exc:
                report.reject(where, str(exc))
                continue
            carrier = carrier_of(number)
            if carrier is None:
                report.reject(
                    where,
                    _("%(number)s: no carrier block covers this number.")
                    % {"number": number},
                )
                continue
            result = grader(number)
            yield _Row(
                number,
                carrier,
                result.code,
                grade_ids.get(result.code) if result.code else None,
                result.reason,
                result.selection_fee,
                has_four(number),
            )

    stream = rows()
    while batch := list(islice(stream, batch_size)):
        # Within a batch, the first occurrence of a number wins.
        unique = list({r.number: r for r in reversed(batch)}.values())[::-1]
        report.duplicates += len(batch) - len(unique)
        yield unique, prepare(unique)


def _produce(out: queue.Queue, stop: threading.Event, language: str, **kwargs):
    """Producer thread: grade batches ahead while the database writes."""
    try:
        with translation.override(language):
            for item in _batches(**kwargs):
                while not stop.is_set():
                    try:
                        out.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
        out.put(_DONE)
    except BaseException as exc:  # handed to the consumer, which re-raises it
        out.put(exc)


def numbers_import(
    *,
    lines: Iterable[tuple[str, str | None]],
    skip_invalid: bool = False,
    batch_size: int = BATCH_SIZE,
    progress=None,
) -> ImportReport:
    """Import numbers given as (where, text) pairs; see the module docstring.

    Parsing and grading run in a helper thread one or two batches ahead of
    the database writes (a bounded queue), so both cores are busy and memory
    stays flat. Raises ``InvalidInput`` (nothing written) when some lines are
    invalid and ``skip_invalid`` is false.
    """
    blocks = dict(CarrierBlock.objects.values_list("prefix", "carrier"))
    if not blocks:
        raise ImportRefused(
            _("No carrier blocks in the catalog: load the catalog first.")
        )
    grader, grade_ids = _grader()
    codes = {pk: code for code, pk in _grade_codes().items()}
    report = ImportReport()
    if connection.vendor == "postgresql":
        prepare, write = _copy_text, _insert_postgresql
    else:
        prepare, write = (lambda rows: None), _insert_orm
    batches: queue.Queue = queue.Queue(maxsize=2)
    stop = threading.Event()
    producer = threading.Thread(
        target=_produce,
        name="numbers-import-grading",
        args=(batches, stop, translation.get_language() or settings.LANGUAGE_CODE),
        kwargs={
            "lines": lines,
            "report": report,
            "carrier_of": CarrierLookup(blocks),
            "grader": grader,
            "grade_ids": grade_ids,
            "batch_size": batch_size,
            "prepare": prepare,
        },
        daemon=True,
    )
    producer.start()
    try:
        with transaction.atomic():
            while (item := batches.get()) is not _DONE:
                if isinstance(item, BaseException):
                    raise item
                rows, prepared = item
                inserted = write(rows, prepared, report, codes)
                report.duplicates += len(rows) - inserted
                report.imported += inserted
                if progress:
                    progress(report)
            if report.invalid and not skip_invalid:
                transaction.set_rollback(True)
                raise InvalidInput(report)
    finally:
        stop.set()
        producer.join()
    if connection.vendor == "postgresql" and report.imported >= ANALYZE_AFTER:
        # Fresh statistics, so the search plans see the new stock at once
        # instead of after the next autovacuum round.
        with connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {PhoneNumber._meta.db_table}")
    logger.info(
        "Imported %s numbers (%s duplicates, %s invalid)",
        report.imported,
        report.duplicates,
        report.invalid,
    )
    return report


def _insert_orm(rows: list[_Row], _prepared, report: ImportReport, _codes) -> int:
    existing = set(
        PhoneNumber.objects.filter(number__in=[r.number for r in rows]).values_list(
            "number", flat=True
        )
    )
    new = [r for r in rows if r.number not in existing]
    PhoneNumber.objects.bulk_create(
        [
            PhoneNumber(
                number=r.number,
                carrier=r.carrier,
                grade_id=r.grade_id,
                grade_reason=r.reason,
                selection_fee=r.selection_fee,
                has_four=r.has_four,
                **_derived_values(r.number),
            )
            for r in new
        ],
        batch_size=1000,
        ignore_conflicts=True,
    )
    for r in new:
        report.per_grade[r.grade_code or ORDINARY] += 1
    return len(new)


def _derived_values(number: str) -> dict:
    """Search helper columns other modules may keep on PhoneNumber."""
    fields = {f.name for f in PhoneNumber._meta.concrete_fields}
    generated = {
        f.name for f in PhoneNumber._meta.concrete_fields if getattr(f, "generated", 0)
    }
    if "reversed_number" in fields and "reversed_number" not in generated:
        return {"reversed_number": number[::-1]}
    return {}


_TEMP = "plans_number_import"
_OWN_COLUMNS = (
    "number",
    "carrier",
    "grade_id",
    "grade_reason",
    "selection_fee",
    "has_four",
)


def _other_columns() -> list[tuple[str, str, list]]:
    """(column, SQL expression, params) for PhoneNumber columns the batch
    table does not carry: status, timestamps, derived and defaulted fields."""
    out = []
    for f in PhoneNumber._meta.concrete_fields:
        if f.primary_key or f.column in _OWN_COLUMNS or getattr(f, "generated", 0):
            continue
        if f.name == "status":
            out.append((f.column, "%s", [PhoneNumber.Status.AVAILABLE]))
        elif f.name == "created_at":
            out.append((f.column, "%s", [timezone.now()]))
        elif f.name == "reversed_number":
            out.append((f.column, "reverse(t.number)", []))
        else:
            value = f.get_db_prep_save(f.get_default(), connection)
            out.append((f.column, "%s", [value]))
    return out


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_text(rows: list[_Row]) -> str:
    """The rows in COPY's text format (tab-separated, \\N for NULL)."""
    buf = io.StringIO()
    write = buf.write
    null = "\\N"
    for r in rows:
        reason = r.reason.translate(_COPY_ESCAPES) if r.reason else ""
        grade = null if r.grade_id is None else r.grade_id
        four = "t" if r.has_four else "f"
        write(
            f"{r.number}\t{r.carrier}\t{grade}\t{reason}\t{r.selection_fee}\t{four}\n"
        )
    return buf.getvalue()


def _insert_postgresql(
    rows: list[_Row], copy_text: str, report: ImportReport, codes: dict[int, str]
) -> int:
    table = PhoneNumber._meta.db_table
    others = _other_columns()
    columns = ", ".join((*_OWN_COLUMNS, *(c for c, _e, _p in others)))
    selects = ", ".join(
        (*(f"t.{c}" for c in _OWN_COLUMNS), *(e for _c, e, _p in others))
    )
    params = [p for _c, _e, ps in others for p in ps]
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {_TEMP} ("
            "number varchar(10), carrier varchar(16), grade_id bigint, "
            "grade_reason varchar(200), selection_fee numeric(12, 2), "
            "has_four boolean) ON COMMIT DROP"
        )
        cursor.execute(f"TRUNCATE {_TEMP}")
        with cursor.copy(
            f"COPY {_TEMP} ({', '.join(_OWN_COLUMNS)}) FROM STDIN"
        ) as copy:
            copy.write(copy_text)
        cursor.execute(
            f"WITH ins AS (INSERT INTO {table} ({columns}) "  # noqa: S608 (fixed names)
            f"SELECT {selects} FROM {_TEMP} t "
            "ON CONFLICT (number) DO NOTHING RETURNING grade_id) "
            "SELECT grade_id, count(*) FROM ins GROUP BY grade_id",
            params,
        )
        counts = cursor.fetchall()
    inserted = 0
    for grade_id, count in counts:
        report.per_grade[codes.get(grade_id, ORDINARY) if grade_id else ORDINARY] += (
            count
        )
        inserted += count
    return inserted


def _grade_codes() -> dict[str, int]:
    return dict(VanityGrade.objects.values_list("code", "pk"))


# ---------------------------------------------------------------------------
# Regrade
# ---------------------------------------------------------------------------


def number_add(*, number: str) -> PhoneNumber:
    """Add one canonical number to stock, graded (the back office's "add")."""
    blocks = dict(CarrierBlock.objects.values_list("prefix", "carrier"))
    carrier = CarrierLookup(blocks)(number)
    if carrier is None:
        raise ImportRefused(
            _("%(number)s: no carrier block covers this number.") % {"number": number}
        )
    grader, grade_ids = _grader()
    result = grader(number)
    return PhoneNumber.objects.create(
        number=number,
        carrier=carrier,
        grade_id=grade_ids.get(result.code) if result.code else None,
        grade_reason=result.reason,
        selection_fee=result.selection_fee,
        has_four=has_four(number),
        **_derived_values(number),
    )


def numbers_regrade(
    *, batch_size: int = 10_000, pks: list[int] | None = None, progress=None
) -> RegradeReport:
    """Grade the numbers in stock again with the current rules.

    Only available numbers change: a held, subscribed or resting number keeps
    the grade (and fee) it was offered or sold with. Rows are read without
    locks in primary-key batches; each change is written by an UPDATE that
    re-checks ``status = available``, so a number held meanwhile is left alone
    (the UPDATE waits for the hold's row lock and then skips the row).
    """
    grader, grade_ids = _grader()
    codes = {pk: code for code, pk in _grade_codes().items()}
    available = PhoneNumber.Status.AVAILABLE
    report = RegradeReport()
    stock = PhoneNumber.objects.all()
    if pks is not None:
        stock = stock.filter(pk__in=pks)
    bounds = stock.aggregate(lo=Min("pk"), hi=Max("pk"))
    if bounds["lo"] is None:
        return report
    # Fixed primary-key windows: each batch is an index range scan whatever
    # the planner's statistics say about a freshly imported table.
    for start in range(bounds["lo"], bounds["hi"] + 1, batch_size):
        batch = list(
            stock.filter(
                status=available, pk__gte=start, pk__lt=start + batch_size
            ).values_list(
                "pk", "number", "grade_id", "grade_reason", "selection_fee", "has_four"
            )
        )
        if not batch:
            continue
        # Changed rows grouped by their new values: one UPDATE per group.
        groups: dict[tuple, list[tuple[int, int | None]]] = {}
        for pk, number, old_grade, old_reason, old_fee, old_four in batch:
            result = grader(number)
            new = (
                grade_ids.get(result.code) if result.code else None,
                result.reason,
                result.selection_fee,
                has_four(number),
            )
            if new != (old_grade, old_reason, old_fee, old_four):
                groups.setdefault(new, []).append((pk, old_grade))
        with transaction.atomic():
            for (grade_id, reason, fee, four), members in groups.items():
                pks = [pk for pk, _old in members]
                updated = PhoneNumber.objects.filter(
                    pk__in=pks, status=available
                ).update(
                    grade_id=grade_id,
                    grade_reason=reason,
                    selection_fee=fee,
                    has_four=four,
                )
                if updated != len(pks):
                    # Some were held meanwhile: count only what changed.
                    still = set(
                        PhoneNumber.objects.filter(
                            pk__in=pks, grade_id=grade_id, grade_reason=reason
                        ).values_list("pk", flat=True)
                    )
                    members = [m for m in members if m[0] in still]
                for _pk, old_grade in members:
                    if old_grade != grade_id:
                        report.lost[codes.get(old_grade, ORDINARY)] += 1
                        report.gained[codes.get(grade_id, ORDINARY)] += 1
                report.changed += len(members)
        report.checked += len(batch)
        if progress:
            progress(report)
    return report
