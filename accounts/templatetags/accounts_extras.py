"""Small template helpers for the accounts pages."""

import datetime as dt

from django import template

register = template.Library()


@register.filter
def total_minutes(value) -> int:
    """A timedelta as whole minutes, rounded up (for the lockout page)."""
    if not isinstance(value, dt.timedelta):
        return 0
    seconds = int(value.total_seconds())
    return -(-seconds // 60)
