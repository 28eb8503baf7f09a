"""Load demo data: agents, companies, users, the catalog, numbers, calls, bills.

Idempotent: running it again changes nothing that is already there. Each app
seeds its own part in ``<app>/demo.py`` (a ``seed(stdout)`` function), in the
order accounts → plans → billing; an optional ``summary(stdout)`` is printed at
the very end (the demo logins).
"""

import importlib

from django.core.management.base import BaseCommand
from django.db import transaction

SEED_MODULES = [
    "accounts.demo",
    "plans.demo",
    "plans.demo_subscriptions",
    "billing.demo",
]


class Command(BaseCommand):
    help = "Load idempotent demo data for the portal."

    def handle(self, *args, **options):
        modules = []
        for name in SEED_MODULES:
            try:
                modules.append(importlib.import_module(name))
            except ModuleNotFoundError as exc:
                if exc.name != name:
                    raise
        for module in modules:
            with transaction.atomic():
                module.seed(stdout=self.stdout)
        self.stdout.write(self.style.SUCCESS("Demo data ready."))
        for module in modules:
            if hasattr(module, "summary"):
                module.summary(stdout=self.stdout)
