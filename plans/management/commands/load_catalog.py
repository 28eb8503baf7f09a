"""``manage.py load_catalog PATH``: load a catalog file (YAML or JSON)."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils.translation import gettext as _

from plans.catalog import CatalogError, read_document
from plans.catalog_services import catalog_load


class Command(BaseCommand):
    help = (
        "Load the catalog (plans, services, grades, holidays, …) from a YAML or "
        "JSON file. Upserts by code in one transaction: a file with any error "
        "changes nothing. See docs/catalog.md."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", help="catalog file (.yaml, .yml or .json)")
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="check the file and report what would change, then change nothing",
        )

    def handle(self, *args, path, dry_run=False, **options):
        file = Path(path)
        try:
            text = file.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(
                _("Cannot read %(path)s: %(error)s") % {"path": path, "error": exc}
            ) from exc
        fmt = "json" if file.suffix.lower() == ".json" else "yaml"
        try:
            with transaction.atomic():
                report = catalog_load(document=read_document(text, fmt=fmt))
                if dry_run:
                    transaction.set_rollback(True)
        except CatalogError as exc:
            for line in exc.errors:
                self.stderr.write(f"{path}: {line}")
            raise CommandError(
                _("%(count)s error(s) in %(path)s; nothing was changed.")
                % {"count": len(exc.errors), "path": path}
            ) from exc
        for line in report.lines():
            self.stdout.write(line)
        if report.regrade_needed:
            self.stdout.write(
                _(
                    "Rules changed for grades %(codes)s: run "
                    "“manage.py regrade_numbers” to apply them to the stock."
                )
                % {"codes": ", ".join(report.regrade_needed)}
            )
        if dry_run:
            self.stdout.write(
                _("Dry run: %(path)s is valid; nothing was changed.") % {"path": path}
            )
        else:
            self.stdout.write(
                self.style.SUCCESS(_("Catalog loaded from %(path)s.") % {"path": path})
            )
