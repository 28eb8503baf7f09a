"""Per-agent API keys for the carrier CDR push API (``POST /api/cdrs/``).

A key is shown once, when it is created; only its SHA-256 hash is stored. The
secret is 32 random bytes, so a fast hash is enough (nobody can brute-force
256 bits) and keeps every API call cheap. The prefix, stored in clear, names
the key in the back office and in logs without revealing it. A key acts for
its agent only: it may push calls for the numbers of that agent's companies.
"""

import hashlib

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

AGENT_KEY_SCHEME = "h4a"  # "Hotline400 agent" key: h4a_<prefix>_<secret>


def hash_agent_api_key(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode("utf-8")).hexdigest()


class AgentApiKey(models.Model):
    agent = models.ForeignKey(
        "accounts.Agent",
        on_delete=models.CASCADE,
        related_name="api_keys",
        verbose_name=_("agent"),
    )
    name = models.CharField(
        _("name"), max_length=100, help_text=_("e.g. the carrier system using it")
    )
    prefix = models.CharField(_("key prefix"), max_length=16, unique=True)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True)
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True)

    class Meta:
        verbose_name = _("carrier API key")
        verbose_name_plural = _("carrier API keys")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({AGENT_KEY_SCHEME}_{self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None
