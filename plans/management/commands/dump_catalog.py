"""``manage.py dump_catalog``: write the catalog in the load_catalog format."""

from pathlib import Path

from django.core.management.base import BaseCommand

from plans.catalog import catalog_document, write_document
from plans.catalog_services import catalog_snapshot


class Command(BaseCommand):
    help = "Write the catalog as YAML (default) or JSON, in the load_catalog format."

    def add_arguments(self, parser):
        parser.add_argument(
            "-o", "--output", help="file to write (default: standard output)"
        )
        parser.add_argument(
            "--format",
            choices=["yaml", "json"],
            help="default: from the output file's extension, else yaml",
        )

    def handle(self, *args, output=None, format=None, **options):
        fmt = format or (
            "json" if output and Path(output).suffix.lower() == ".json" else "yaml"
        )
        text = write_document(catalog_document(catalog_snapshot()), fmt=fmt)
        if output:
            Path(output).write_text(text, encoding="utf-8")
        else:
            self.stdout.write(text, ending="")
