"""``manage.py regrade_numbers``: apply changed grading rules to the stock."""

from django.core.management.base import BaseCommand
from django.utils.translation import gettext as _

from plans.inventory_services import numbers_regrade


class Command(BaseCommand):
    help = (
        "Grade the available numbers again with the current vanity grades. "
        "Held, subscribed and resting numbers keep their grade."
    )

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=5_000)

    def handle(self, *args, batch_size=5_000, **options):
        report = numbers_regrade(batch_size=batch_size)
        self.stdout.write(
            _("Checked %(checked)s available numbers; %(changed)s changed.")
            % {"checked": f"{report.checked:,}", "changed": f"{report.changed:,}"}
        )
        for code in sorted(set(report.gained) | set(report.lost)):
            self.stdout.write(
                f"  {code:<20} +{report.gained[code]:,} −{report.lost[code]:,}"
            )
