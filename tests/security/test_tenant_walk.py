"""Company B can reach none of company A's objects, through any URL.

Walks every route of the portal and the API (``tests.security.walk``), points
each at company A's objects and requests it as B's owner (the strongest
role, so a role check cannot hide a missing tenant check) and with B's API
key: every answer is 404 (or 405 for a method the route does not take), and
not a row of any table changed.
"""

import pytest
from django.test import Client

from tests.security.walk import (
    POST_DATA,
    ROUTE_ARGUMENTS,
    UNKNOWN_ROUTE_HELP,
    build_world,
    changed_tables,
    fingerprint,
    is_api,
    routes,
    unknown_routes,
    url_for,
)

pytestmark = pytest.mark.django_db

DENIED = {404, 405}
#: Routes that answer a link they cannot honour with their own page rather
#: than a 404: Django's reset page says "this link is invalid" (checked below).
OWN_REFUSAL_PAGE = {"accounts:password_reset_confirm": {200}}


def test_every_route_with_arguments_is_known_to_the_walk():
    unknown = unknown_routes(routes())

    assert not unknown, UNKNOWN_ROUTE_HELP.format("\n  ".join(unknown))


def test_the_walk_lists_no_route_that_is_gone():
    names = {r.name for r in routes()}

    assert set(ROUTE_ARGUMENTS) <= names, sorted(set(ROUTE_ARGUMENTS) - names)


@pytest.fixture
def worlds():
    return build_world(), build_world()


def _portal_requests(client, route, url):
    for method in ("get", "post"):
        yield method, getattr(client, method)(url, POST_DATA)


def test_company_b_gets_404_for_every_portal_url_of_company_a(worlds):
    a, b = worlds
    client = Client()
    client.force_login(b.owner)
    failures = []

    for route in routes():
        if not route.kwargs or is_api(route):
            continue
        url = url_for(route, a)
        expected = OWN_REFUSAL_PAGE.get(route.name, DENIED)
        for method in ("get", "post"):
            before = fingerprint()
            response = getattr(client, method)(url, POST_DATA)
            changed = changed_tables(before, fingerprint())
            if response.status_code not in expected or changed:
                failures.append(
                    f"{method.upper()} {url} ({route.name}): "
                    f"{response.status_code}, changed {changed}"
                )
            if route.name in OWN_REFUSAL_PAGE:
                assert response.context["validlink"] is False
                assert a.owner.email not in response.content.decode()

    assert not failures, "Company B reached company A:\n" + "\n".join(failures)


def test_company_b_key_gets_404_for_every_api_url_of_company_a(worlds):
    a, b = worlds
    client = Client(HTTP_AUTHORIZATION=f"Bearer {b.raw_api_key}")
    failures = []

    for route in routes():
        if not route.kwargs or not is_api(route):
            continue
        url = url_for(route, a)
        for method in ("get", "post"):
            before = fingerprint()
            response = getattr(client, method)(url, {}, content_type="application/json")
            changed = changed_tables(before, fingerprint())
            if response.status_code not in DENIED or changed:
                failures.append(
                    f"{method.upper()} {url}: {response.status_code}, changed {changed}"
                )

    assert not failures, "B's API key reached company A:\n" + "\n".join(failures)


def test_the_same_urls_do_work_for_company_a(worlds):
    """The walk is not vacuous: A's owner reaches A's objects by GET."""
    a, _b = worlds
    client = Client()
    client.force_login(a.owner)
    reached = set()

    for route in routes():
        if not route.kwargs or is_api(route) or route.name in OWN_REFUSAL_PAGE:
            continue
        if client.get(url_for(route, a)).status_code == 200:
            reached.add(route.name)

    assert {
        "accounts:licence",
        "plans:checkout",
        "plans:subscription",
        "billing:invoice_detail",
        "billing:invoice_calls_csv",
        "billing:line_calls",
    } <= reached
