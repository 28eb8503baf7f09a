"""What the URL walks share: every route of the project, a fingerprint of the
database, and one company's worth of objects to point the routes at.

``routes()`` walks ``django.urls.get_resolver()`` recursively, so a URL added
anywhere shows up in the walks without anyone editing them; the walks fail
for a route whose arguments they do not know how to fill.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

from django.core.files.base import ContentFile
from django.db import connection
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone

#: Tables a request may write to without changing any business state: the
#: session store and the login-attempt log of django-axes.
IGNORED_TABLES = frozenset(
    {
        "django_session",
        "axes_accessattempt",
        "axes_accesslog",
        "axes_accessfailurelog",
        "django_migrations",
    }
)
#: Columns a read may touch: an API key records (once a minute) when it was
#: last used, which is what its owner wants to see in the key list.
IGNORED_COLUMNS = {
    "billing_companyapikey": ["last_used_at"],
    "billing_agentapikey": ["last_used_at"],
}

#: Route prefixes the walks leave out: the admin (the accounts admin-isolation
#: test walks every ModelAdmin), static files, health and the schema.
SKIPPED_PREFIXES = ("admin/", "static/", "health/", "api/schema/")

_PARAM = re.compile(r"<(?:(?P<converter>[^>:]+):)?(?P<name>\w+)>")


@dataclass(frozen=True)
class Route:
    route: str  # "billing/invoices/<int:pk>/"
    name: str  # "billing:invoice_detail"
    pattern: object = field(compare=False, repr=False)

    @property
    def kwargs(self) -> tuple[str, ...]:
        names = [m["name"] for m in _PARAM.finditer(self.route)]
        regex = getattr(self.pattern.pattern, "regex", None)
        if not names and regex is not None and regex.groupindex:
            names = list(regex.groupindex)
        return tuple(names)

    @property
    def is_regex(self) -> bool:
        return not hasattr(self.pattern.pattern, "converters")

    def url(self, **values) -> str:
        """The path with ``values`` substituted (for ``path()`` routes)."""
        missing = set(self.kwargs) - set(values)
        assert not missing, f"{self.name}: no value for {sorted(missing)}"
        text = _PARAM.sub(lambda m: str(values[m["name"]]), self.route)
        return "/" + text.lstrip("^").rstrip("$").replace("\\", "")

    @property
    def callback(self):
        return self.pattern.callback


def _walk(resolver, prefix: str, namespace: str):
    for item in resolver.url_patterns:
        text = str(item.pattern)
        if isinstance(item, URLResolver):
            ns = namespace + (f"{item.namespace}:" if item.namespace else "")
            yield from _walk(item, prefix + text, ns)
        elif isinstance(item, URLPattern):
            yield Route(prefix + text, namespace + (item.name or ""), item)


def all_routes() -> list[Route]:
    return list(_walk(get_resolver(), "", ""))


def routes() -> list[Route]:
    """Every route of the portal and the API (not the admin)."""
    return [r for r in all_routes() if not r.route.startswith(SKIPPED_PREFIXES)]


def admin_routes() -> list[Route]:
    return [r for r in all_routes() if r.route.startswith("admin/")]


# --- database fingerprint -------------------------------------------------------


def _tables() -> list[str]:
    return sorted(
        t for t in connection.introspection.table_names() if t not in IGNORED_TABLES
    )


def fingerprint() -> dict[str, str]:
    """An md5 of every table's rows (as JSON, in a stable order), one query."""
    parts = []
    for table in _tables():
        drop = IGNORED_COLUMNS.get(table, [])
        row = "to_jsonb(t)" + "".join(f" - '{c}'" for c in drop)
        # Table and column names come from the schema, not from input.
        sql = (
            f"(SELECT md5(coalesce(string_agg(x, '|' ORDER BY x), '')) FROM "  # noqa: S608
            f'(SELECT ({row})::text AS x FROM "{table}" t) s)'
        )
        parts.append(sql)
    tables = _tables()
    with connection.cursor() as cursor:
        cursor.execute("SELECT " + ", ".join(parts))
        return dict(zip(tables, cursor.fetchone(), strict=True))


def changed_tables(before: dict[str, str], after: dict[str, str]) -> list[str]:
    return sorted(t for t in before if before[t] != after.get(t))


# --- one company's objects ------------------------------------------------------


@dataclass
class World:
    """A company with one of everything a URL can point at."""

    company: object
    owner: object
    member: object
    staff: object
    invitation: object
    licence: object
    hold: object
    subscription: object
    invoice: object
    usage_line: object
    api_key: object
    raw_api_key: str


def build_world(agent=None) -> World:
    from accounts.models import BusinessLicence, Invitation
    from billing.services.company_api_keys import api_key_create
    from plans.models import Hold
    from tests.billing.bill_data import build_bill
    from tests.factories import (
        AgentStaffFactory,
        CompanyFactory,
        UserFactory,
        stock_number,
    )

    company = CompanyFactory(**({"agent": agent} if agent else {}))
    owner = UserFactory(company=company, role="owner")
    member = UserFactory(company=company, role="member")
    staff = AgentStaffFactory(agent=company.agent)
    invitation = Invitation.objects.create(
        company=company,
        email=f"invited-{company.pk}@example.cn",
        role="member",
        token=f"{company.pk:064d}",
        expires_at=timezone.now() + dt.timedelta(days=3),
    )
    licence = BusinessLicence(
        company=company,
        original_name="licence.pdf",
        content_type="application/pdf",
        size=9,
        uploaded_by=owner,
    )
    licence.file.save("licence.pdf", ContentFile(b"%PDF-1.4\n"), save=True)
    number = stock_number(f"4006{company.pk % 1_000_000:06d}", status="held")
    hold = Hold.objects.create(
        number=number,
        company=company,
        created_by=owner,
        expires_at=timezone.now() + dt.timedelta(minutes=30),
    )
    bill = build_bill(company, number=f"4007{company.pk % 1_000_000:06d}")
    key, raw = api_key_create(company=company, name="ERP", by=owner)
    return World(
        company=company,
        owner=owner,
        member=member,
        staff=staff,
        invitation=invitation,
        licence=licence,
        hold=hold,
        subscription=bill.subscription,
        invoice=bill.invoice,
        usage_line=bill.lines["peak"],
        api_key=key,
        raw_api_key=raw,
    )


def _uidb64(user) -> str:
    from django.utils.encoding import force_bytes
    from django.utils.http import urlsafe_base64_encode

    return urlsafe_base64_encode(force_bytes(user.pk))


#: How to point each route that takes arguments at a World's objects:
#: route name -> {argument: function(world) -> value}. A new route with
#: arguments must be added here (the walks fail until it is).
ROUTE_ARGUMENTS = {
    "accounts:password_reset_confirm": {
        "uidb64": lambda w: _uidb64(w.owner),
        # Not a token anyone issued: the page must say the link is invalid.
        "token": lambda w: "set-password",
    },
    "accounts:invitation_revoke": {"pk": lambda w: w.invitation.pk},
    "accounts:user_role": {"pk": lambda w: w.member.pk},
    "accounts:user_active": {"pk": lambda w: w.member.pk},
    # Only the token's hash is stored: knowing it must not open the invitation.
    "accounts:invitation_accept": {"token": lambda w: w.invitation.token},
    "accounts:licence": {"pk": lambda w: w.licence.pk},
    "plans:hold_cancel": {"pk": lambda w: w.hold.pk},
    "plans:checkout": {"pk": lambda w: w.hold.pk},
    "plans:subscription": {"pk": lambda w: w.subscription.pk},
    "plans:change_plan": {"pk": lambda w: w.subscription.pk},
    "plans:change_services": {"pk": lambda w: w.subscription.pk},
    "plans:change_answer_numbers": {"pk": lambda w: w.subscription.pk},
    "plans:end": {"pk": lambda w: w.subscription.pk},
    "billing:invoice_detail": {"pk": lambda w: w.invoice.pk},
    "billing:invoice_pdf": {"pk": lambda w: w.invoice.pk},
    "billing:invoice_lines_csv": {"pk": lambda w: w.invoice.pk},
    "billing:invoice_calls_csv": {"pk": lambda w: w.invoice.pk},
    "billing:line_calls": {"pk": lambda w: w.usage_line.pk},
    "billing:line_calls_csv": {"pk": lambda w: w.usage_line.pk},
    "billing:api_key_revoke": {"pk": lambda w: w.api_key.pk},
    "api:invoice": {"pk": lambda w: w.invoice.pk},
    "api:invoice-lines": {"pk": lambda w: w.invoice.pk},
    "api:line-calls": {"pk": lambda w: w.usage_line.pk},
}


def unknown_routes(candidates: list[Route]) -> list[str]:
    return sorted(
        f"{r.name or '(unnamed)'} ({r.route})"
        for r in candidates
        if r.kwargs and r.name not in ROUTE_ARGUMENTS
    )


UNKNOWN_ROUTE_HELP = (
    "These routes take arguments the URL walks do not know how to fill:\n  {}\n"
    "Add each to ROUTE_ARGUMENTS in tests/security/walk.py: the route name and, "
    "for each argument, a function of the World (tests/security/walk.py "
    "build_world) returning the id of that company's object the URL addresses. "
    "Add the object to World if it is a new kind."
)


def url_for(route: Route, world: World) -> str:
    fillers = ROUTE_ARGUMENTS.get(route.name, {})
    return route.url(**{name: fillers[name](world) for name in route.kwargs})


def is_api(route: Route) -> bool:
    return route.route.startswith("api/")


#: What a POST sends: enough for a view that forgot its checks to act.
POST_DATA = {
    "role": "owner",
    "active": "0",
    "action": "confirm",
    "confirm": "on",
    "name": "walk",
    "reason": "walk",
    "email": "walk@example.cn",
    "full_name": "walk",
    "new_password1": "a long walking passphrase 1",
    "new_password2": "a long walking passphrase 1",
    "password1": "a long walking passphrase 1",
    "password2": "a long walking passphrase 1",
}
