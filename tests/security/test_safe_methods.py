"""No GET changes state; every state-changing request is a POST with CSRF.

Walks every route of the project, the back office included, with real ids
(company A's objects, ``tests.security.walk``): a GET as the company's owner,
as its agent's staff and as a superuser must leave every table as it was
(sessions and the login-attempt log aside), and a POST without the CSRF
token must be refused with 403 by every route that takes a session.
"""

import pytest
from django.apps import apps
from django.contrib.contenttypes.models import ContentType
from django.test import Client

from tests.security.walk import (
    POST_DATA,
    ROUTE_ARGUMENTS,
    UNKNOWN_ROUTE_HELP,
    World,
    admin_routes,
    build_world,
    changed_tables,
    fingerprint,
    is_api,
    routes,
    unknown_routes,
    url_for,
)

pytestmark = pytest.mark.django_db

ADMIN_OBJECT_ARGS = {"object_id", "pk", "id"}


def _catalog_and_other_objects(world: World) -> dict:
    """Back-office objects by model label, for the admin routes."""
    from django.contrib.auth.models import Group

    from audit.models import AuditEvent
    from plans.models import CarrierBlock, CatalogSettings, TaxRate
    from tests.admin_samples import SAMPLE_BUILDERS
    from tests.factories import (
        HolidayFactory,
        ValueAddedServiceFactory,
        VanityGradeFactory,
    )

    cached = getattr(world, "_admin_objects", None)
    if cached is not None:
        return cached
    agent = world.company.agent
    plan_period = world.subscription.plan_periods.first()
    objects = {
        "accounts.Agent": agent,
        "accounts.Company": world.company,
        "accounts.User": world.member,
        "accounts.BusinessLicence": world.licence,
        "accounts.Invitation": world.invitation,
        "plans.Subscription": world.subscription,
        "plans.Hold": world.hold,
        "plans.PhoneNumber": world.hold.number,
        "plans.Plan": plan_period.plan,
        "plans.TaxRate": TaxRate.objects.first(),
        "plans.CatalogSettings": CatalogSettings.load(),
        "plans.Holiday": HolidayFactory(),
        "plans.CarrierBlock": CarrierBlock.objects.create(
            prefix="4006", carrier="telecom"
        ),
        "plans.ValueAddedService": ValueAddedServiceFactory(),
        "plans.VanityGrade": VanityGradeFactory(),
        "billing.Invoice": world.invoice,
        "audit.AuditEvent": AuditEvent.objects.filter(company=world.company).first(),
        "auth.Group": Group.objects.create(name="walk"),
    }
    for label in ("billing.CloseRun", "billing.CdrImport", "billing.AgentApiKey"):
        objects[label] = SAMPLE_BUILDERS[label](agent)
    world._admin_objects = objects
    return objects


#: Superuser-only admins of third-party apps whose rows the project never
#: creates by hand; a missing id still exercises the page (it redirects).
NO_SAMPLE = {"axes.AccessAttempt", "axes.AccessLog", "axes.AccessFailureLog"}


def _admin_url(route, objects, world) -> str:
    values = {}
    parts = route.route.split("/")
    for name in route.kwargs:
        if (name in ADMIN_OBJECT_ARGS and name != "object_id") or (
            name == "object_id" and "content_type_id" not in route.kwargs
        ):
            label = apps.get_model(parts[1], parts[2])._meta.label
            if label in NO_SAMPLE:
                values[name] = 999_999
                continue
            assert label in objects, (
                f"{route.name} ({route.route}) addresses a {label}: add a sample "
                f"of it to _catalog_and_other_objects in {__file__}."
            )
            values[name] = objects[label].pk
        elif name == "content_type_id":
            values[name] = ContentType.objects.get_for_model(world.company).pk
        elif name == "object_id":
            values[name] = world.company.pk
        elif name == "app_label":
            values[name] = "plans"
        elif name == "url":
            values[name] = "no-such-page/"
        else:
            raise AssertionError(
                f"{route.name} ({route.route}) takes {name!r}: teach _admin_url "
                f"in {__file__} how to fill it."
            )
    if route.is_regex:
        # admin/^(?P<app_label>…)/$ and the catch-all
        text = route.route.replace("^", "").replace("$", "")
        text = text.split("(?P<")[0] + str(next(iter(values.values())))
        return "/" + text + ("/" if route.kwargs == ("app_label",) else "")
    return route.url(**values)


@pytest.fixture
def world():
    return build_world()


def _urls(world):
    """(label, url) of every route with real ids: portal, API and admin."""
    assert not unknown_routes(routes()), UNKNOWN_ROUTE_HELP.format(
        "\n  ".join(unknown_routes(routes()))
    )
    objects = _catalog_and_other_objects(world)
    out = [(r, url_for(r, world)) for r in routes()]
    out += [(r, _admin_url(r, objects, world)) for r in admin_routes()]
    return out


def _get_all(client, urls, *, api_client=None) -> list[str]:
    problems = []
    for route, url in urls:
        chosen = api_client if (api_client and is_api(route)) else client
        before = fingerprint()
        response = chosen.get(url)
        changed = changed_tables(before, fingerprint())
        if changed:
            problems.append(f"GET {url} ({route.name}) changed {changed}")
        if response.status_code >= 500:
            problems.append(f"GET {url} ({route.name}) answered {response.status_code}")
    return problems


def test_no_get_changes_anything_for_the_owner(world):
    owner = Client()
    owner.force_login(world.owner)
    api = Client(HTTP_AUTHORIZATION=f"Bearer {world.raw_api_key}")

    problems = _get_all(owner, _urls(world), api_client=api)

    assert not problems, "\n".join(problems)


def test_no_get_changes_anything_for_agent_staff(world):
    staff = Client()
    staff.force_login(world.staff)

    problems = _get_all(staff, _urls(world))

    assert not problems, "\n".join(problems)


def test_no_get_changes_anything_for_a_superuser(world):
    from tests.factories import UserFactory

    superuser = Client()
    superuser.force_login(
        UserFactory(company=None, role="", is_staff=True, is_superuser=True)
    )

    problems = _get_all(superuser, _urls(world))

    assert not problems, "\n".join(problems)


def test_a_post_without_the_csrf_token_is_refused_everywhere(world):
    owner = Client(enforce_csrf_checks=True)
    owner.force_login(world.owner)
    staff = Client(enforce_csrf_checks=True)
    staff.force_login(world.staff)
    refused, accepted = [], []

    for route, url in _urls(world):
        if is_api(route):
            continue  # key-authenticated, no cookies: see the next test
        client = staff if route.route.startswith("admin/") else owner
        before = fingerprint()
        response = client.post(url, POST_DATA)
        unchanged = not changed_tables(before, fingerprint())
        if response.status_code == 403 and unchanged:
            refused.append(url)
        else:
            accepted.append(f"POST {url} ({route.name}): {response.status_code}")

    assert not accepted, "POST without a CSRF token was not refused:\n" + "\n".join(
        accepted
    )
    assert len(refused) > 50


def test_the_api_ignores_the_portal_session_so_needs_no_csrf(world):
    """The API is CSRF-exempt because only a key authenticates it: a logged-in
    browser session (all a forged cross-site request could carry) gets 401/403
    from every API route."""
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(world.owner)
    answers = {}

    for route in routes():
        if is_api(route):
            url = url_for(route, world)
            answers[url] = (
                browser.get(url).status_code,
                browser.post(url, {}, content_type="application/json").status_code,
            )

    assert answers
    assert all(
        get in (401, 403) and post in (401, 403, 405) for get, post in answers.values()
    ), answers
    assert set(ROUTE_ARGUMENTS) >= {r.name for r in routes() if r.kwargs}
