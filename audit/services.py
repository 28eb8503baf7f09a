"""Recording sensitive actions. Call ``audit_record`` inside the service's
transaction, so the trail and the change commit (or roll back) together."""

import datetime as dt
from decimal import Decimal
from typing import Any

from django.db import models

from .models import AuditEvent


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, models.Model):
        return value.pk
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(v) for v in value]
    return value


def snapshot(obj: models.Model, fields: list[str]) -> dict[str, Any]:
    """The named fields of ``obj`` as JSON-safe values (FKs as ids)."""
    data = {}
    for name in fields:
        field = obj._meta.get_field(name)
        data[name] = _plain(getattr(obj, field.attname))
    return data


def audit_record(
    *,
    actor,
    action: str,
    target: models.Model | None = None,
    company=None,
    agent=None,
    before: dict | None = None,
    after: dict | None = None,
) -> AuditEvent:
    """Append one event. ``company``/``agent`` default from the target."""
    if company is None and target is not None:
        company = getattr(target, "company", None)
        if company is None and target._meta.label == "accounts.Company":
            company = target
    if agent is None:
        agent = getattr(company, "agent", None) or getattr(target, "agent", None)
    authenticated = actor is not None and getattr(actor, "is_authenticated", False)
    return AuditEvent.objects.create(
        actor=actor if authenticated else None,
        actor_label=(actor.email if authenticated else "system"),
        agent=agent,
        company=company,
        action=action,
        target_type=target._meta.label if target is not None else "",
        target_id=str(target.pk) if target is not None else "",
        target_label=str(target)[:300] if target is not None else "",
        before=_plain(before) if before is not None else None,
        after=_plain(after) if after is not None else None,
    )


def model_snapshot(obj: models.Model) -> dict[str, Any]:
    """Every concrete field of ``obj`` and its many-to-many ids (sorted)."""
    data = snapshot(obj, [f.name for f in obj._meta.concrete_fields])
    if obj.pk is not None:
        for field in obj._meta.many_to_many:
            data[field.name] = sorted(
                getattr(obj, field.name).values_list("pk", flat=True)
            )
    return data


def changed_only(
    before: dict | None, after: dict | None
) -> tuple[dict | None, dict | None]:
    """The keys whose values differ (the whole dicts for a creation/deletion)."""
    if before is None or after is None:
        return before, after
    keys = [k for k in after if before.get(k) != after.get(k)]
    return {k: before.get(k) for k in keys}, {k: after[k] for k in keys}
