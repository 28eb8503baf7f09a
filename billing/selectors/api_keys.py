"""Reads of the per-company API keys."""

from billing.models import CompanyApiKey


def api_keys_for(*, company):
    return CompanyApiKey.objects.filter(company=company).order_by(
        "revoked_at", "-created_at"
    )
