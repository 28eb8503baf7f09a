"""The read-only company API and its per-company keys."""

import pytest
from django.urls import reverse
from django.utils import timezone
from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.generators import SchemaGenerator

from billing import api_urls
from billing.models import CompanyApiKey
from billing.services.company_api_keys import api_key_create
from tests.billing.bill_data import build_bill, login
from tests.factories import CompanyFactory


def _auth(raw: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


@pytest.fixture
def bill(company):
    return build_bill(company)


@pytest.fixture
def key(bill):
    return api_key_create(company=bill.invoice.company, name="ERP")


def test_owner_creates_a_key_that_is_shown_once_and_stored_hashed(client, company):
    login(client, company, "owner")

    response = client.post(
        reverse("billing:api_keys"), {"name": "ERP 导出"}, follow=True
    )

    raw = response.context["new_key"]
    stored = CompanyApiKey.objects.get(company=company)
    assert raw.startswith(f"h4c_{stored.prefix}_")
    assert raw in response.content.decode()
    assert raw not in {stored.key_hash, stored.prefix, stored.name}
    again = client.get(reverse("billing:api_keys")).content.decode()
    assert raw not in again and stored.prefix in again


def test_finance_cannot_manage_keys(client, company):
    login(client, company, "finance")

    response = client.post(reverse("billing:api_keys"), {"name": "x"})

    assert response.status_code == 404
    assert not CompanyApiKey.objects.exists()


def test_a_key_reads_its_companys_invoices_lines_and_calls(client, bill, key):
    row, raw = key

    listing = client.get(reverse("api:invoices"), **_auth(raw))
    detail = client.get(
        reverse("api:invoice", kwargs={"pk": bill.invoice.pk}), **_auth(raw)
    )
    lines = client.get(
        reverse("api:invoice-lines", kwargs={"pk": bill.invoice.pk}), **_auth(raw)
    )
    calls = client.get(
        reverse("api:line-calls", kwargs={"pk": bill.lines["peak"].pk}), **_auth(raw)
    )

    assert listing.status_code == 200
    assert [i["number"] for i in listing.json()["results"]] == [bill.invoice.number]
    assert detail.json()["total"] == "2220.30"
    assert detail.json()["period"] == "2026-03"
    assert {v["category"]: v["tax"] for v in detail.json()["vat"]} == {
        "basic": "16.54",
        "value_added": "114.34",
    }
    assert len(lines.json()) == len(bill.lines)
    assert [c["duration_seconds"] for c in calls.json()["results"]] == [61, 120, 30]
    assert "13800138000" not in calls.content.decode()
    assert "138****8000" in calls.content.decode()
    row.refresh_from_db()
    assert row.last_used_at is not None


def test_another_companys_ids_are_404_for_a_key(client, bill):
    other = CompanyFactory(agent=bill.invoice.company.agent)
    _row, raw = api_key_create(company=other, name="theirs")

    urls = [
        reverse("api:invoice", kwargs={"pk": bill.invoice.pk}),
        reverse("api:invoice-lines", kwargs={"pk": bill.invoice.pk}),
        reverse("api:line-calls", kwargs={"pk": bill.lines["peak"].pk}),
    ]
    statuses = [client.get(url, **_auth(raw)).status_code for url in urls]
    listing = client.get(reverse("api:invoices"), **_auth(raw)).json()

    assert statuses == [404, 404, 404]
    assert listing["results"] == []


def test_a_revoked_key_gets_401(client, company, bill, key):
    row, raw = key
    login(client, company, "owner")
    client.post(reverse("billing:api_key_revoke", kwargs={"pk": row.pk}))
    client.logout()

    response = client.get(reverse("api:invoices"), **_auth(raw))

    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    row.refresh_from_db()
    assert row.revoked_at is not None


def test_an_owner_cannot_revoke_another_companys_key(client, company):
    other = CompanyFactory(agent=company.agent)
    row, _raw = api_key_create(company=other, name="theirs")
    login(client, company, "owner")

    response = client.post(reverse("billing:api_key_revoke", kwargs={"pk": row.pk}))

    assert response.status_code == 404
    row.refresh_from_db()
    assert row.revoked_at is None


@pytest.mark.parametrize("header", [{}, {"HTTP_AUTHORIZATION": "Bearer h4c_x_y"}])
def test_no_key_or_a_wrong_key_is_refused(client, db, header):
    response = client.get(reverse("api:invoices"), **header)

    assert response.status_code in (401, 403)
    assert response.status_code == 401 or not header


def test_a_logged_in_portal_session_is_not_an_api_key(client, company):
    login(client, company, "owner")

    response = client.get(reverse("api:invoices"))

    assert response.status_code in (401, 403)


def test_usage_and_month_to_date_endpoints(client, bill, key):
    _row, raw = key

    usage = client.get(reverse("api:usage"), {"month": "2026-03"}, **_auth(raw))
    bad = client.get(reverse("api:usage"), {"month": "March"}, **_auth(raw))
    mtd = client.get(reverse("api:month-to-date"), **_auth(raw))

    assert usage.status_code == 200
    assert (usage.json()["calls"], usage.json()["missed"]) == (5, 1)
    assert usage.json()["miss_rate"] == "20.0"
    assert bad.status_code == 400 and "YYYY-MM" in bad.content.decode()
    assert mtd.status_code == 200
    assert mtd.json()["period"] == timezone.localdate().strftime("%Y-%m")


def test_openapi_schema_of_the_company_api_generates_without_warnings(db):
    GENERATOR_STATS.reset()
    company_patterns = [
        p for p in api_urls.urlpatterns if str(p.pattern).startswith("v1/")
    ]

    schema = SchemaGenerator(patterns=company_patterns).get_schema(
        request=None, public=True
    )

    assert not GENERATOR_STATS._warn_cache, dict(GENERATOR_STATS._warn_cache)
    assert not GENERATOR_STATS._error_cache, dict(GENERATOR_STATS._error_cache)
    assert "/v1/lines/{id}/calls/" in schema["paths"]
    assert "CompanyApiKey" in schema["components"]["securitySchemes"]


def test_the_full_schema_endpoint_serves(client, db):
    response = client.get(reverse("api-schema"))

    assert response.status_code == 200
    assert b"/api/v1/invoices/" in response.content


def test_revoking_asks_first_and_the_key_works_until_confirmed(
    client, company, bill, key
):
    row, raw = key
    login(client, company, "owner")
    url = reverse("billing:api_key_revoke", kwargs={"pk": row.pk})

    page = client.get(url)
    still = client.get(reverse("api:invoices"), **_auth(raw)).status_code
    client.post(url)
    again = client.get(url)

    assert page.status_code == 200
    assert row.prefix in page.content.decode()
    assert still == 200
    row.refresh_from_db()
    assert row.revoked_at is not None
    assert again.status_code == 404  # a revoked key has nothing to confirm
