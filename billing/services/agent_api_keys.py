"""Writes for the per-agent carrier API keys (agent staff create and revoke them)."""

from __future__ import annotations

import secrets

from django.db import transaction
from django.utils import timezone

from audit.services import audit_record
from billing.models.api_keys import AGENT_KEY_SCHEME, AgentApiKey, hash_agent_api_key


def agent_api_key_create(*, agent, name: str, by=None) -> tuple[AgentApiKey, str]:
    """A new key; returns the row and the raw key (shown once, never stored)."""
    prefix = secrets.token_hex(4)
    raw = f"{AGENT_KEY_SCHEME}_{prefix}_{secrets.token_urlsafe(32)}"
    with transaction.atomic():
        key = AgentApiKey.objects.create(
            agent=agent,
            name=name[:100],
            prefix=prefix,
            key_hash=hash_agent_api_key(raw),
            created_by=by,
        )
        audit_record(
            actor=by,
            action="agent_api_key.create",
            target=key,
            agent=agent,
            after={"name": key.name, "prefix": key.prefix},
        )
    return key, raw


@transaction.atomic
def agent_api_key_revoke(*, key: AgentApiKey, by=None) -> AgentApiKey:
    """Revoke a key (idempotent)."""
    key = AgentApiKey.objects.select_for_update().get(pk=key.pk)
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
        audit_record(
            actor=by,
            action="agent_api_key.revoke",
            target=key,
            agent=key.agent,
            before={"revoked_at": None},
            after={"revoked_at": key.revoked_at},
        )
    return key


def agent_api_key_authenticate(raw: str) -> AgentApiKey | None:
    """The active key ``raw`` stands for, or None; marks it used."""
    parts = raw.split("_", 2)
    if len(parts) != 3 or parts[0] != AGENT_KEY_SCHEME:
        return None
    key = (
        AgentApiKey.objects.select_related("agent")
        .filter(prefix=parts[1], revoked_at__isnull=True)
        .first()
    )
    if key is None or not secrets.compare_digest(key.key_hash, hash_agent_api_key(raw)):
        return None
    now = timezone.now()
    if key.last_used_at is None or (now - key.last_used_at).total_seconds() > 60:
        AgentApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now
    return key
