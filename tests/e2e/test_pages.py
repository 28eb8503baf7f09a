"""Every main page, checked in the browser: one h1, a label on every control,
readable contrast; on a phone, nothing wider than the screen and a menu that
opens from the keyboard."""

import re

import pytest
from playwright.sync_api import expect

from tests.e2e import checks
from tests.e2e.helpers import admin_log_in, log_in, tr
from tests.e2e.world import PUBLIC_PAGES, build_world, portal_pages
from tests.factories import AgentStaffFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _check_all(page, urls, check) -> dict[str, list[str]]:
    found = {}
    for url in urls:
        response = page.goto(url)
        assert response.status == 200, url
        if problems := checks.run(page, check):
            found[url] = problems
    return found


def test_every_main_page_has_one_h1_labelled_controls_and_readable_text(page):
    world = build_world()

    structure = _check_all(page, PUBLIC_PAGES, checks.STRUCTURE)
    contrast = _check_all(page, PUBLIC_PAGES, checks.CONTRAST)
    log_in(page, world.owner)
    pages = portal_pages(world).values()
    structure |= _check_all(page, pages, checks.STRUCTURE)
    contrast |= _check_all(page, pages, checks.CONTRAST)

    assert not structure, structure
    assert not contrast, contrast


def test_the_keyboard_reaches_the_content_first(page, language):
    world = build_world()
    log_in(page, world.owner)
    page.goto("/billing/invoices/")

    page.keyboard.press("Tab")
    skip = page.locator(":focus")
    expect(skip).to_have_text(tr(language, "Skip to content"))
    expect(skip).to_be_in_viewport()
    page.keyboard.press("Enter")
    # (the page reports the new address a moment after the key: wait for it)
    expect(page).to_have_url(re.compile(r"#main$"))


FOCUS_RING = """
() => {
  const el = document.activeElement;
  const style = getComputedStyle(el);
  const ring = (style.outlineStyle !== "none" && parseFloat(style.outlineWidth) > 0)
    || style.boxShadow !== "none";
  return [el.tagName.toLowerCase() + (el.name ? `[name=${el.name}]` : "")
    + " " + (el.innerText || el.value || "").trim().slice(0, 20), ring];
}
"""


def test_a_keyboard_user_sees_where_they_are_and_can_check_out(page, language):
    world = build_world()
    log_in(page, world.owner)
    page.goto(f"/numbers/holds/{world.hold.pk}/checkout/")

    # Every stop of the Tab key shows a focus ring
    unseen, stops = [], 0
    while True:
        page.keyboard.press("Tab")
        name, ring = page.evaluate(FOCUS_RING)
        if name.startswith("body"):  # past the last control
            break
        stops += 1
        if not ring:
            unseen.append(name)
    assert stops > 15
    assert not unseen, unseen

    # The order can be placed with the keyboard alone
    page.locator("input[name=plan]:checked").focus()
    page.keyboard.press("ArrowRight")  # the next package the grade allows
    page.get_by_role("button", name=tr(language, "Review the costs")).focus()
    page.keyboard.press("Enter")
    confirm = page.get_by_role("button", name=tr(language, "Confirm and order"))
    confirm.focus()
    page.keyboard.press("Enter")
    page.wait_for_url("**/numbers/mine/*/")


def test_main_pages_fit_a_phone_and_the_menu_opens_from_the_keyboard(
    phone_page, language, screenshot
):
    page = phone_page
    world = build_world()
    log_in(page, world.owner)
    problems = {}
    for name, url in portal_pages(world).items():
        page.goto(url)
        if found := checks.run(page, checks.OVERFLOW):
            problems[url] = found
        screenshot(f"phone-{name}", of=page, full_page=False)
    assert not problems, problems

    # The menu is folded on a phone; the keyboard opens it.
    nav = page.locator("nav.mainnav")
    expect(nav).to_be_hidden()
    page.locator("#nav-toggle").focus()
    page.keyboard.press("Space")
    expect(nav).to_be_visible()
    expect(
        nav.get_by_role("link", name=tr(language, "Bills"), exact=True)
    ).to_be_visible()
    screenshot("phone-menu", of=page, full_page=False)


# Names, file formats and codes that stay in Latin letters in Chinese copy.
LATIN_OK = {"Hotline", "API", "OpenAPI", "ERP", "PDF", "CSV", "PNG", "JPEG"}
ADMIN_LATIN_OK = LATIN_OK | {"English", "hans", "UTF", "GBK", "YYYY", "std", "biz"}
# The CDR upload page lists the English column names a file may use.
ADMIN_PAGES = [
    "/admin/",
    "/admin/accounts/company/",
    "/admin/plans/subscription/",
    "/admin/plans/hold/",
    "/admin/billing/invoice/",
    "/admin/billing/cdrimport/",
    "/admin/billing/closerun/",
    "/admin/billing/closerun/start/",
    "/admin/audit/auditevent/",
]


@pytest.mark.parametrize("language", ["zh-hans"])
def test_chinese_pages_have_no_untranslated_english(page, staff_page, language):
    world = build_world()
    staff = AgentStaffFactory(agent=world.owner.company.agent)

    found = {}
    for url in PUBLIC_PAGES:
        page.goto(url)
        found[url] = set(checks.run(page, checks.LATIN_WORDS)) - LATIN_OK
    log_in(page, world.owner)
    for url in portal_pages(world).values():
        page.goto(url)
        found[url] = set(checks.run(page, checks.LATIN_WORDS)) - LATIN_OK
    admin_log_in(staff_page, staff)
    for url in ADMIN_PAGES:
        staff_page.goto(url)
        found[url] = set(checks.run(staff_page, checks.LATIN_WORDS)) - ADMIN_LATIN_OK

    assert not {url: words for url, words in found.items() if words}
