"""``manage.py import_cdrs FILE... [--agent ID]``: import carrier call records.

Prints the summary of each file (imported / duplicates / rejected, and the
first rejected rows). Exits 0 when every file was read, 1 when a file was
rejected whole (undecodable, header lacking a required column) or failed.
"""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from django.utils.translation import gettext as _

from accounts.models import Agent
from billing.models import CdrImport
from billing.services.cdr_import import cdr_import_file

SHOWN_ERRORS = 20


class Command(BaseCommand):
    help = (
        "Import carrier CDR files (CSV or tab-separated; UTF-8, UTF-8 with BOM, "
        "UTF-16 with BOM or GBK/GB18030). Valid rows are imported and rated, "
        "invalid rows are reported with their line number, calls already "
        "stored are skipped. With --agent, only numbers of that agent's "
        "companies are accepted."
    )
    # The system checks (URLs, admin, templates: a third of a second) say
    # nothing about a file import; `manage.py check` and deploys run them.
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument("files", nargs="+", metavar="FILE")
        parser.add_argument(
            "--agent", type=int, help="import for this agent id (its numbers only)"
        )

    def handle(self, *args, files, agent=None, **options):
        agent_obj = None
        if agent is not None:
            agent_obj = Agent.objects.filter(pk=agent).first()
            if agent_obj is None:
                raise CommandError(_("No agent with id %(id)s.") % {"id": agent})
        failed = False
        for name in files:
            path = Path(name)
            if not path.is_file():
                self.stderr.write(_("%(file)s: no such file.") % {"file": name})
                failed = True
                continue
            imp = cdr_import_file(path=path, agent=agent_obj)
            failed |= self._report(path, imp)
        if failed:
            raise SystemExit(1)

    def _report(self, path: Path, imp: CdrImport) -> bool:
        if imp.status != CdrImport.Status.DONE:
            self.stderr.write(
                _("%(file)s: %(status)s. %(message)s")
                % {
                    "file": path,
                    "status": imp.get_status_display(),
                    "message": imp.message,
                }
            )
            return True
        self.stdout.write(
            _("%(file)s (%(encoding)s): %(rows)d rows read. %(message)s")
            % {
                "file": path,
                "encoding": imp.encoding,
                "rows": imp.rows_read,
                "message": imp.message,
            }
        )
        for err in imp.errors.order_by("line_number")[:SHOWN_ERRORS]:
            self.stdout.write(
                _("  line %(line)d: %(reason)s")
                % {"line": err.line_number, "reason": err.reason}
            )
        if imp.rejected > SHOWN_ERRORS:
            self.stdout.write(
                _("  … and %(count)d more rejected rows (see import #%(id)d).")
                % {"count": imp.rejected - SHOWN_ERRORS, "id": imp.pk}
            )
        return False
