"""Writes for the per-company API keys (owners create and revoke them)."""

from __future__ import annotations

import secrets

from django.db import transaction
from django.utils import timezone

from audit.services import audit_record
from billing.models.api_keys_company import KEY_SCHEME, CompanyApiKey, hash_api_key


def api_key_create(*, company, name: str, by=None) -> tuple[CompanyApiKey, str]:
    """A new key; returns the row and the raw key (shown once, never stored)."""
    prefix = secrets.token_hex(4)
    raw = f"{KEY_SCHEME}_{prefix}_{secrets.token_urlsafe(32)}"
    with transaction.atomic():
        key = CompanyApiKey.objects.create(
            company=company,
            name=name[:100],
            prefix=prefix,
            key_hash=hash_api_key(raw),
            created_by=by,
        )
        audit_record(
            actor=by,
            action="api_key.create",
            target=key,
            after={"name": key.name, "prefix": key.prefix},
        )
    return key, raw


@transaction.atomic
def api_key_revoke(*, company, pk, by=None) -> CompanyApiKey | None:
    """Revoke one of the company's keys (idempotent); None if not the company's."""
    key = (
        CompanyApiKey.objects.select_for_update().filter(company=company, pk=pk).first()
    )
    if key is None:
        return None
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.revoked_by = by
        key.save(update_fields=["revoked_at", "revoked_by"])
        audit_record(
            actor=by,
            action="api_key.revoke",
            target=key,
            before={"revoked_at": None},
            after={"revoked_at": key.revoked_at},
        )
    return key
