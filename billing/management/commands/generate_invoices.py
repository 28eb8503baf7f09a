"""``manage.py generate_invoices --period YYYY-MM [--company ID] [--issue]``.

The monthly close from a shell, run in this process: for every company with
something to bill (or only ``--company``), rate pending calls and build the
draft of the month; with ``--issue``, issue each draft that passes the sanity
bound. Each agent's run is recorded as a CloseRun, so the back office shows it.
Safe to run again: a company's invoice is built once.
"""

import datetime as dt
import re

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from accounts.models import Agent, Company
from billing.services.invoices import close_company, close_item_finish, close_run_start


def parse_period(value: str) -> dt.date:
    match = re.fullmatch(r"(\d{4})-(\d{2})", value or "")
    if not match or not 1 <= int(match.group(2)) <= 12:
        raise CommandError(
            _("--period must be a month like 2026-03, not %(v)r.") % {"v": value}
        )
    return dt.date(int(match.group(1)), int(match.group(2)), 1)


class Command(BaseCommand):
    help = "Build (and with --issue, issue) the invoices of a month."

    def add_arguments(self, parser):
        parser.add_argument("--period", required=True, help="YYYY-MM")
        parser.add_argument("--company", type=int, help="only this company id")
        parser.add_argument(
            "--issue",
            action="store_true",
            help="issue each invoice that passes the sanity bound",
        )

    def handle(self, *args, period, company=None, issue=False, **options):
        month = parse_period(period)
        if company is not None:
            target = Company.objects.filter(pk=company).select_related("agent").first()
            if target is None:
                raise CommandError(_("No company with id %(id)s.") % {"id": company})
            agents = [target.agent]
        else:
            agents = list(Agent.objects.order_by("pk"))
        failed = 0
        for agent in agents:
            run = close_run_start(
                agent=agent,
                period=month,
                issue=issue,
                company_ids=[company] if company is not None else None,
                fan_out=False,
            )
            for item in run.items.select_related("company").order_by("company_id"):
                try:
                    status = close_company(
                        company=item.company, period=month, issue=issue, run=run
                    )
                except Exception as exc:
                    failed += 1
                    close_item_finish(
                        run=run,
                        company=item.company,
                        status="failed",
                        error=f"{type(exc).__name__}: {exc}",
                    )
                    self.stderr.write(f"{item.company_id} {item.company}: {exc}")
                    continue
                self.stdout.write(f"{item.company_id} {item.company}: {status}")
            self.stdout.write(
                _("%(agent)s %(month)s: %(n)s companies.")
                % {"agent": agent, "month": f"{month:%Y-%m}", "n": run.companies_total}
            )
        if failed:
            raise CommandError(_("%(n)s companies failed.") % {"n": failed})
