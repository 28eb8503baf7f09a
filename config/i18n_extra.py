"""Strings Django's own templates show but its zh_Hans catalog lacks (the
admin's app list headers, read out by screen readers). Listed here so the
project's catalog (locale/, searched before Django's) translates them.
Never imported: ``makemessages`` reads the file."""

from django.utils.translation import gettext_noop

DJANGO_ADMIN = [
    gettext_noop("Model name"),
    gettext_noop("Add link"),
    gettext_noop("Change or view list link"),
]
