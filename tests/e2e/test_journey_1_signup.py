"""Journey 1: a company signs up with its licence, agent staff approve it in the
back office, and the owner receives the approval email."""

import io

import pytest
from django.core import mail
from PIL import Image
from playwright.sync_api import expect

from accounts.models import BusinessLicence, Company, User
from tests.e2e.helpers import admin_log_in, go_to, tr
from tests.factories import PASSWORD, AgentFactory, AgentStaffFactory, make_uscc

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def licence_png(path) -> bytes:
    """A small but real PNG, as a phone photo of a licence would be."""
    image = Image.new("RGB", (240, 160), "white")
    for x in range(20, 220):
        image.putpixel((x, 80), (200, 0, 0))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    path.write_bytes(buffer.getvalue())
    return buffer.getvalue()


def test_company_signs_up_is_approved_and_receives_the_email(
    page, staff_page, language, screenshot, tmp_path
):
    agent = AgentFactory(name="华南通信")
    staff = AgentStaffFactory(agent=agent, full_name="张伟")
    licence = tmp_path / "licence.png"
    png = licence_png(licence)
    uscc = make_uscc(4_242_424)
    t = lambda text: tr(language, text)  # noqa: E731

    # Given the sign-up page
    page.goto("/accounts/login/")
    page.get_by_role("link", name=t("Register your company")).click()
    assert page.locator("h1").inner_text() == t("Register your company")
    page.get_by_label(t("Company name")).fill("深圳市蓝海科技有限公司")
    page.get_by_label(t("Unified social credit code")).fill(uscc)
    page.get_by_label(t("Registered address")).fill("广东省深圳市南山区科苑路8号")
    page.get_by_label(t("Billing email")).fill("finance@lanhai.example.cn")
    page.get_by_label(t("Contact phone")).fill("13800138000")
    page.get_by_label(t("Your name")).fill("李娜")
    page.get_by_label(t("Your email")).fill("lina@lanhai.example.cn")
    page.get_by_label(t("Password"), exact=True).fill(PASSWORD)
    page.get_by_label(t("Password again")).fill(PASSWORD + "x")
    page.get_by_label(t("Business licence (营业执照)")).set_input_files(licence)
    screenshot("signup")

    # When the passwords differ, the form says so and keeps what was typed
    page.get_by_role("button", name=t("Register")).click()
    page.locator(".field--error").first.wait_for()
    assert t("The two passwords do not match.") in page.inner_text("main")
    company_name = page.get_by_label(t("Company name"))
    assert company_name.input_value() == "深圳市蓝海科技有限公司"
    assert page.get_by_label(t("Your email")).input_value() == "lina@lanhai.example.cn"
    assert not Company.objects.exists()
    screenshot("signup-error")

    # When the owner corrects it (and chooses the file again)
    page.get_by_label(t("Password"), exact=True).fill(PASSWORD)
    page.get_by_label(t("Password again")).fill(PASSWORD)
    page.get_by_label(t("Business licence (营业执照)")).set_input_files(licence)
    page.get_by_role("button", name=t("Register")).click()

    # Then the company is registered, pending, with its licence stored
    page.wait_for_url(lambda url: "/signup/" not in url)
    assert "深圳市蓝海科技有限公司" in page.inner_text("header")
    company = Company.objects.get(uscc=uscc)
    assert company.verification_status == Company.Verification.PENDING
    assert company.agent == agent
    stored = BusinessLicence.objects.get(company=company)
    assert stored.file.read() == png
    owner = User.objects.get(email="lina@lanhai.example.cn")
    assert owner.company == company and owner.is_owner
    awaiting = t(
        "Your company is awaiting real-name verification. You can browse and "
        "reserve numbers now; activation opens once your business licence is "
        "approved."
    )
    assert awaiting in page.inner_text("main")
    screenshot("registered")

    # When agent staff open the verification queue in their own browser
    admin_log_in(staff_page, staff)
    staff_page.goto("/admin/accounts/company/?verification_status__exact=pending")
    row = staff_page.locator("#result_list tbody tr", has_text="深圳市蓝海科技有限公司")
    assert row.count() == 1
    screenshot("admin-queue", of=staff_page)
    # … look at the licence on the company's page and approve it there
    row.get_by_role("link", name="深圳市蓝海科技有限公司").click()
    expect(staff_page.locator("img[src*='/accounts/licences/']")).to_have_count(1)
    screenshot("admin-company", of=staff_page)
    mail.outbox.clear()
    staff_page.get_by_role("button", name=t("Approve the verification")).click()

    # Then the back office confirms it and the owner is emailed, in their language
    expect(staff_page.locator(".messagelist .success")).to_have_count(1)
    # (back on the queue, which is now empty)
    expect(staff_page.locator("#result_list")).to_have_count(0)
    company.refresh_from_db()
    assert company.verification_status == Company.Verification.APPROVED
    assert company.verified_by == staff
    screenshot("admin-approved", of=staff_page)
    (email,) = mail.outbox
    assert email.to == ["lina@lanhai.example.cn"]
    assert email.subject == tr(
        language, "%(name)s is verified on Hotline400", name=company.name
    )
    assert "/" in email.body and company.name in email.body

    # And the owner's portal no longer asks for verification
    page.reload()
    assert awaiting not in page.inner_text("main")
    screenshot("approved-overview")
    # And an empty "my numbers" says what to do next
    go_to(page, t("My numbers"))
    page.get_by_role(
        "link", name=t("Find a number and hold it while you choose a package.")
    ).click()
    expect(page.locator("h1")).to_have_text(t("Choose a number"))
