"""Back office for the plans app.

Holds and subscriptions are in admin_subscriptions.py (imported below);
catalog and inventory admin classes go in this file.
"""

from . import admin_subscriptions  # noqa: F401  (registers Hold, Subscription)
