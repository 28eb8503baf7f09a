"""Holding numbers: expiry, the per-company limit, the 20-thread race,
releasing by the beat task and on read, cancelling, and who may do it."""

import datetime as dt
import threading

import pytest
from django.conf import settings
from django.db import connection
from django.urls import reverse
from django.utils import timezone, translation

from plans import services
from plans.models import Hold, PhoneNumber
from plans.tasks import release_expired_holds_task, release_quarantined_numbers_task
from tests.factories import CompanyFactory, UserFactory, stock_number


@pytest.fixture
def number(db):
    return stock_number("4008108888")


def test_a_hold_lasts_the_configured_minutes(settings, company, owner, number):
    settings.HOTLINE_RESERVATION_MINUTES = 45
    now = timezone.now()

    hold = services.number_hold(company=company, number=number, by=owner, now=now)

    number.refresh_from_db()
    assert hold.expires_at == now + dt.timedelta(minutes=45)
    assert number.status == PhoneNumber.Status.HELD
    assert hold.created_by == owner


def test_a_company_may_hold_three_numbers_at_once(company, owner):
    numbers = [stock_number(f"400810000{i}") for i in range(4)]
    for n in numbers[:3]:
        services.number_hold(company=company, number=n, by=owner)

    with pytest.raises(services.HoldLimitReached):
        services.number_hold(company=company, number=numbers[3], by=owner)

    numbers[3].refresh_from_db()
    assert numbers[3].status == PhoneNumber.Status.AVAILABLE
    assert Hold.objects.filter(company=company).count() == 3


def test_expired_holds_do_not_count_towards_the_limit(company, owner):
    numbers = [stock_number(f"400810000{i}") for i in range(4)]
    past = timezone.now() - dt.timedelta(hours=1)
    for n in numbers[:3]:
        services.number_hold(company=company, number=n, by=owner, now=past)

    hold = services.number_hold(company=company, number=numbers[3], by=owner)

    assert hold.pk is not None


def test_a_number_held_by_another_company_is_refused_with_a_message(
    company, owner, number
):
    services.number_hold(company=CompanyFactory(), number=number, by=None)

    with translation.override("en"), pytest.raises(services.NumberUnavailable) as exc:
        services.number_hold(company=company, number=number, by=owner)

    assert "400-810-8888" in exc.value.message
    assert "another customer" in exc.value.message


def test_the_refusal_is_translated(company, owner, number):
    services.number_hold(company=CompanyFactory(), number=number, by=None)

    with translation.override("zh-hans"), pytest.raises(services.PlansError) as exc:
        services.number_hold(company=company, number=number, by=owner)

    assert "another customer" not in exc.value.message
    assert "400-810-8888" in exc.value.message


def test_an_expired_hold_never_blocks_another_company(company, owner, number):
    other = CompanyFactory()
    past = timezone.now() - dt.timedelta(minutes=31)
    first = services.number_hold(company=other, number=number, by=None, now=past)

    second = services.number_hold(company=company, number=number, by=owner)

    first.refresh_from_db()
    assert first.released_at is not None
    assert second.company == company


def test_the_beat_task_releases_expired_holds_only(company, owner):
    old, fresh = stock_number("4008100001"), stock_number("4008100002")
    past = timezone.now() - dt.timedelta(minutes=31)
    expired = services.number_hold(company=company, number=old, by=owner, now=past)
    current = services.number_hold(company=company, number=fresh, by=owner)

    released = release_expired_holds_task.delay().get()

    expired.refresh_from_db()
    current.refresh_from_db()
    old.refresh_from_db()
    fresh.refresh_from_db()
    assert released == 1
    assert expired.released_at is not None and current.released_at is None
    assert old.status == PhoneNumber.Status.AVAILABLE
    assert fresh.status == PhoneNumber.Status.HELD


def test_beat_schedule_runs_the_tasks_with_expiry():
    entry = settings.CELERY_BEAT_SCHEDULE["plans.release_expired_holds"]
    rested = settings.CELERY_BEAT_SCHEDULE["plans.release_quarantined_numbers"]

    assert entry["task"] == release_expired_holds_task.name
    assert entry["schedule"] <= 60 and entry["options"]["expires"] <= 60
    assert rested["task"] == release_quarantined_numbers_task.name
    assert rested["options"]["expires"]


def test_cancelling_a_hold_gives_the_number_back(company, owner, number):
    hold = services.number_hold(company=company, number=number, by=owner)

    services.hold_cancel(hold=hold, by=owner)

    hold.refresh_from_db()
    number.refresh_from_db()
    assert hold.released_at is not None
    assert number.status == PhoneNumber.Status.AVAILABLE


# --- the race -----------------------------------------------------------------
def _run_threads(count: int, work) -> list:
    """Start ``count`` threads at once; each returns "won" or an error."""
    barrier = threading.Barrier(count)
    results: list = [None] * count

    def run(i: int) -> None:
        try:
            barrier.wait()
            results[i] = work(i)
        except Exception as exc:  # a PlansError, or any failure the test reports
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results


@pytest.mark.django_db(transaction=True)
def test_twenty_companies_racing_for_one_number_exactly_one_wins():
    number = stock_number("4008108888")
    companies = [CompanyFactory() for _ in range(20)]

    def work(i):
        services.number_hold(company=companies[i], number=number, by=None)
        return "won"

    results = _run_threads(20, work)

    winners = [r for r in results if r == "won"]
    losers = [r for r in results if isinstance(r, services.NumberUnavailable)]
    assert len(winners) == 1, results
    assert len(losers) == 19, results
    assert all(loser.message for loser in losers)
    assert Hold.objects.filter(number=number, released_at__isnull=True).count() == 1


@pytest.mark.django_db(transaction=True)
def test_one_company_racing_for_six_numbers_gets_three():
    company = CompanyFactory()
    numbers = [stock_number(f"400810000{i}") for i in range(6)]

    def work(i):
        services.number_hold(company=company, number=numbers[i], by=None)
        return "won"

    results = _run_threads(6, work)

    assert results.count("won") == 3, results
    assert sum(isinstance(r, services.HoldLimitReached) for r in results) == 3
    assert Hold.objects.filter(company=company).count() == 3


# --- pages ---------------------------------------------------------------------
def test_owner_holds_from_the_search_page_and_lands_on_checkout(client, owner, number):
    client.force_login(owner)

    response = client.post(reverse("plans:hold"), {"number": "400-810-8888"})

    hold = Hold.objects.get(number=number)
    assert response.status_code == 302
    assert response["Location"] == reverse("plans:checkout", args=[hold.pk])


def test_members_and_finance_cannot_hold(client, company, number):
    for role in ("member", "finance"):
        client.force_login(UserFactory(company=company, role=role))

        response = client.post(reverse("plans:hold"), {"number": "4008108888"})

        assert response.status_code == 404
    assert not Hold.objects.exists()


def test_another_companys_hold_is_a_404(client, owner, number):
    theirs = services.number_hold(company=CompanyFactory(), number=number, by=None)
    client.force_login(owner)

    assert client.get(reverse("plans:checkout", args=[theirs.pk])).status_code == 404
    cancel = client.post(reverse("plans:hold_cancel", args=[theirs.pk]))
    assert cancel.status_code == 404
    theirs.refresh_from_db()
    assert theirs.released_at is None


def test_my_numbers_shows_holds_with_their_expiry_time(client, company, owner, number):
    hold = services.number_hold(company=company, number=number, by=owner)
    client.force_login(owner)
    client.cookies["hotline400_language"] = "en"

    response = client.get(reverse("plans:my_numbers"))

    body = response.content.decode()
    expires = timezone.localtime(hold.expires_at).strftime("%H:%M")
    assert f"held until {expires}" in body
    assert "data-countdown-until" in body
    assert "js/countdown.js" in body


def test_a_refused_hold_never_redirects_off_site(client, owner, number):
    services.number_hold(company=CompanyFactory(), number=number, by=None)
    client.force_login(owner)

    response = client.post(
        reverse("plans:hold"),
        {"number": "4008108888", "next": "https://evil.example.com/"},
    )

    assert response.status_code == 302
    assert response["Location"] == reverse("plans:search")


@pytest.mark.django_db(transaction=True)
def test_the_release_task_and_new_holds_racing_never_deadlock():
    number = stock_number("4008108888")
    past = timezone.now() - dt.timedelta(minutes=31)
    services.number_hold(company=CompanyFactory(), number=number, by=None, now=past)
    companies = [CompanyFactory() for _ in range(5)]

    def work(i):
        if i % 2:
            services.holds_release_expired()
            return "released"
        services.number_hold(company=companies[i // 2], number=number, by=None)
        return "won"

    results = _run_threads(10, work)

    assert results.count("won") == 1, results
    assert results.count("released") == 5, results
    assert all(
        r in ("won", "released") or isinstance(r, services.NumberUnavailable)
        for r in results
    ), results
    assert Hold.objects.filter(number=number, released_at__isnull=True).count() == 1


def test_releasing_asks_first_then_gives_the_number_back(
    client, company, owner, number
):
    hold = services.number_hold(company=company, number=number, by=owner)
    client.force_login(owner)
    url = reverse("plans:hold_cancel", args=[hold.pk])

    page = client.get(url)
    hold.refresh_from_db()
    assert page.status_code == 200
    assert number.display in page.content.decode()
    assert hold.released_at is None

    released = client.post(url)
    after = client.get(url)

    hold.refresh_from_db()
    number.refresh_from_db()
    assert released.status_code == after.status_code == 302
    assert hold.released_at is not None
    assert number.status == PhoneNumber.Status.AVAILABLE
