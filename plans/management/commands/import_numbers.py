"""``manage.py import_numbers [CSV] [--range A-B ...]``: add numbers to stock."""

import sys
import time
from itertools import chain
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from plans.inventory_services import (
    MAX_REPORTED_ERRORS,
    ImportRefused,
    InvalidInput,
    csv_lines,
    numbers_import,
    parse_range,
    range_lines,
)


class Command(BaseCommand):
    help = (
        "Import 400 numbers from a CSV (first column; '-' reads standard input) "
        "and/or ranges such as --range 4008100000-4008199999. Skips numbers "
        "already in stock or repeated, assigns the carrier by block, grades "
        "every number and reports counts per grade. A file with invalid lines "
        "imports nothing unless --skip-invalid is given."
    )

    def add_arguments(self, parser):
        parser.add_argument("csv", nargs="?", help="CSV file, one number per row")
        parser.add_argument(
            "--range",
            action="append",
            default=[],
            dest="ranges",
            metavar="FIRST-LAST",
            help="an inclusive range of numbers; may be repeated",
        )
        parser.add_argument(
            "--skip-invalid",
            action="store_true",
            help="import the valid lines even when some are invalid",
        )

    def handle(self, *args, csv=None, ranges=(), skip_invalid=False, **options):
        if not csv and not ranges:
            raise CommandError(_("Give a CSV file, one or more --range, or both."))
        try:
            bounds = [parse_range(r) for r in ranges]
        except ImportRefused as exc:
            raise CommandError(str(exc)) from exc
        handle = None
        sources = [range_lines(lo, hi) for lo, hi in bounds]
        if csv:
            try:
                handle = (
                    sys.stdin
                    if csv == "-"
                    else Path(csv).open(encoding="utf-8-sig", newline="")  # noqa: SIM115
                )
            except OSError as exc:
                raise CommandError(
                    _("Cannot read %(path)s: %(error)s") % {"path": csv, "error": exc}
                ) from exc
            sources.insert(0, csv_lines(handle))
        started = time.perf_counter()
        try:
            report = numbers_import(
                lines=chain.from_iterable(sources),
                skip_invalid=skip_invalid,
                progress=self._progress if options["verbosity"] >= 2 else None,
            )
        except UnicodeDecodeError as exc:
            raise CommandError(
                _("%(path)s is not UTF-8 text: %(error)s") % {"path": csv, "error": exc}
            ) from exc
        except ImportRefused as exc:
            raise CommandError(str(exc)) from exc
        except InvalidInput as exc:
            self._errors(exc.report)
            raise CommandError(
                _(
                    "%(count)s invalid line(s); nothing was imported. Fix them, "
                    "or pass --skip-invalid to import the valid ones."
                )
                % {"count": exc.report.invalid}
            ) from exc
        finally:
            if handle is not None and handle is not sys.stdin:
                handle.close()
        elapsed = time.perf_counter() - started
        self._errors(report)
        self.stdout.write(
            _(
                "Read %(read)s numbers: %(imported)s imported, %(duplicates)s "
                "skipped as duplicates, %(invalid)s invalid, in %(seconds).1f s."
            )
            % {
                "read": f"{report.read:,}",
                "imported": f"{report.imported:,}",
                "duplicates": f"{report.duplicates:,}",
                "invalid": f"{report.invalid:,}",
                "seconds": elapsed,
            }
        )
        for code, count in sorted(report.per_grade.items(), key=lambda x: -x[1]):
            self.stdout.write(f"  {code:<20} {count:>10,}")

    def _progress(self, report):
        self.stderr.write(
            _("… %(read)s read, %(imported)s imported")
            % {"read": f"{report.read:,}", "imported": f"{report.imported:,}"}
        )

    def _errors(self, report):
        for where, message in report.errors:
            self.stderr.write(f"{where}: {message}")
        if report.invalid > MAX_REPORTED_ERRORS:
            self.stderr.write(
                _("… and %(count)s more invalid lines.")
                % {"count": report.invalid - MAX_REPORTED_ERRORS}
            )
