"""Journey 2: the owner finds a vanity number by pattern, holds it (with a live
countdown), compares packages, checks out with services and two answering
numbers, and agent staff activate it in the back office."""

import contextlib
from decimal import Decimal

import pytest
from django.utils import timezone
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import expect

from plans.models import AnswerNumber, Hold, PhoneNumber, Subscription
from tests.e2e.helpers import admin_log_in, customer, go_to, log_in, shown, tr
from tests.factories import (
    AgentStaffFactory,
    PlanFactory,
    UserFactory,
    ValueAddedServiceFactory,
    VanityGradeFactory,
    ensure_catalog_basics,
    stock_number,
)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_owner_reserves_a_vanity_number_checks_out_and_staff_activate_it(
    page, staff_page, language, screenshot
):
    t = lambda text, **values: tr(language, text, **values)  # noqa: E731
    name = lambda obj: obj.name_zh if language == "zh-hans" else obj.name_en  # noqa: E731
    ensure_catalog_basics()
    owner = UserFactory(role="owner", company=customer(), full_name="李娜")
    staff = AgentStaffFactory(agent=owner.company.agent, full_name="张伟")
    grade = VanityGradeFactory(
        code="aaaa",
        name_zh="四连号",
        name_en="Four of a kind",
        selection_fee=Decimal("2000.00"),
        min_monthly=Decimal("300.00"),
    )
    basic = PlanFactory(code="basic", name_zh="基础套餐", name_en="Basic")
    business = PlanFactory(
        code="business",
        name_zh="商务套餐",
        name_en="Business",
        price=Decimal("399.00"),
        included_minutes=3000,
    )
    recording = ValueAddedServiceFactory(
        code="recording", name_zh="通话录音", name_en="Call recording"
    )
    ValueAddedServiceFactory(code="ivr", name_zh="语音导航", name_en="IVR")
    stock_number("4006868888", grade=grade)
    stock_number("4001238888", grade=grade)  # does not fit the pattern
    stock_number("4005551234")

    # Given the owner on the number search
    log_in(page, owner)
    page.get_by_role("navigation").get_by_role(
        "link", name=t("Choose a number")
    ).click()
    # When a pattern has a letter, the page says what is wrong and keeps it
    page.get_by_label(t("Pattern")).fill("400*8*888a")
    page.get_by_role("button", name=t("Search")).click()
    expect(page.locator(".field--error .field__error")).to_have_text(
        t("A pattern has only digits and * (any digit), e.g. 400*8*8888.")
    )
    expect(page.get_by_label(t("Pattern"))).to_have_value("400*8*888a")
    # When they search with a valid pattern
    page.get_by_label(t("Pattern")).fill("400*8*8888")
    page.get_by_role("button", name=t("Search")).click()
    # Then only the matching number is listed, with its grade and fee
    rows = page.locator("table.number-results tbody tr")
    expect(rows).to_have_count(1)
    assert "400-686-8888" in rows.first.inner_text()
    assert name(grade) in rows.first.inner_text()
    assert page.get_by_label(t("Pattern")).input_value() == "400*8*8888"
    screenshot("search")

    # When they hold it
    rows.first.get_by_role("button", name=t("Hold")).click()
    # Then the checkout shows a countdown that runs
    page.wait_for_url("**/checkout/")
    hold = Hold.objects.get(company=owner.company)
    assert hold.number.number == "4006868888"
    assert hold.expires_at > timezone.now()
    countdown = page.locator(".countdown").first
    expect(countdown).to_contain_text(":")
    first = countdown.inner_text()
    page.wait_for_function(
        "([el, text]) => el.textContent !== text",
        arg=[countdown.element_handle(), first],
        timeout=3_000,
    )
    assert countdown.inner_text() != first
    assert t("{time} left").split("{time}")[-1].strip() in first
    screenshot("checkout")

    # When they compare the packages (and come back to the held number)
    go_to(page, t("Packages"))
    compare = page.locator("table.compare")
    expect(compare).to_contain_text(name(basic))
    expect(compare).to_contain_text("399.00")
    screenshot("compare")
    page.go_back()

    # Then the package too cheap for the grade is disabled, with the reason
    too_cheap = page.locator("label.plan-choice", has_text=name(basic))
    expect(too_cheap.locator("input[type=radio]")).to_be_disabled()
    reason = too_cheap.locator(".plan-choice__reason").inner_text()
    assert "300.00" in reason and "199.00" in reason
    # When they pick the allowed package, a service and two answering numbers
    page.locator("label.plan-choice", has_text=name(business)).locator(
        "input[type=radio]"
    ).check()
    page.get_by_role("checkbox", name=name(recording)).check()
    phones = page.get_by_role("textbox", name=t("Answering numbers"))
    phones.fill("13800138000\n010-12345678")
    page.get_by_role("button", name=t("Review the costs")).click()

    # Then a summary with the costs asks for confirmation before anything is ordered
    confirm = page.get_by_role("button", name=t("Confirm and order"))
    expect(confirm).to_be_visible()
    quote = page.locator(".quote").inner_text()
    assert "2,000.00" in quote  # the selection fee
    assert not Subscription.objects.exists()
    screenshot("review")
    # (a second click while the order is on its way sends nothing)
    with contextlib.suppress(PlaywrightError):  # the page may be gone already
        confirm.evaluate(
            "async (button) => { button.click();"
            " await new Promise((done) => setTimeout(done, 30)); button.click(); }"
        )

    # Then the number waits for activation
    page.wait_for_url("**/numbers/mine/*/")
    expect(page.locator(".message--success")).to_have_count(1)
    expect(page.locator(".message--error")).to_have_count(0)
    subscription = Subscription.objects.get(company=owner.company)
    assert subscription.status == Subscription.Status.PENDING
    assert set(
        AnswerNumber.objects.filter(subscription=subscription).values_list(
            "phone", flat=True
        )
    ) == {"+8613800138000", "+861012345678"}
    assert list(subscription.service_periods.values_list("service", flat=True)) == [
        recording.pk
    ]
    expect(page.locator(".badge--warn").first).to_have_text(
        shown(language, subscription.get_status_display)
    )
    screenshot("pending")

    # When agent staff find it by number in the back office and activate it
    admin_log_in(staff_page, staff)
    staff_page.goto("/admin/plans/subscription/")
    staff_page.locator("#searchbar").fill("400-686-8888")
    staff_page.locator("#changelist-search [type=submit]").click()
    staff_page.locator("#result_list tbody tr th a").first.click()
    staff_page.get_by_role("link", name=t("Activate…")).click()
    expect(
        staff_page.get_by_label(t("Activation date (first billable day)"))
    ).to_have_value(timezone.localdate().isoformat())
    screenshot("admin-activate", of=staff_page)
    staff_page.locator("input[name=apply]").click()

    # Then the number is in service for the owner
    expect(staff_page.locator(".messagelist .success")).to_have_count(1)
    subscription.refresh_from_db()
    assert subscription.status == Subscription.Status.ACTIVE
    assert subscription.activated_on == timezone.localdate()
    assert PhoneNumber.objects.get(number="4006868888").status == "subscribed"
    page.reload()
    expect(page.locator(".badge--ok").first).to_have_text(
        shown(language, subscription.get_status_display)
    )
    screenshot("active")
