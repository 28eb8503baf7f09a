"""Sign-up: company, first owner and business licence, all or nothing."""

import io

import pytest
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.core.handlers.wsgi import LimitedStream
from django.test import RequestFactory
from django.urls import reverse

from accounts import views
from accounts.models import BusinessLicence, Company, User
from tests.factories import AgentFactory, CompanyFactory, UserFactory

from .helpers import EXE, JPEG, PDF, PNG, signup_data, upload

pytestmark = pytest.mark.django_db

MAX = 5 * 1024 * 1024


def _media_files():
    root = settings.MEDIA_ROOT
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def _nothing_created():
    return (
        Company.objects.count() == 0
        and User.objects.filter(company__isnull=False).count() == 0
        and BusinessLicence.objects.count() == 0
        and _media_files() == []
    )


def test_sign_up_creates_a_pending_company_its_owner_and_licence_and_logs_in(client):
    agent = AgentFactory()

    response = client.post(
        reverse("accounts:signup"), {**signup_data(), "licence": upload(PDF)}
    )

    assert response.status_code == 302
    assert response["Location"] == reverse("dashboard")
    company = Company.objects.get()
    assert company.agent == agent
    assert company.verification_status == Company.Verification.PENDING
    assert not company.is_verified
    assert company.contact_phone == "+8613800138000"
    assert company.billing_email == "billing@example.cn"
    owner = User.objects.get(company=company)
    assert owner.email == "zhang.san@example.cn"
    assert owner.role == User.Role.OWNER
    licence = BusinessLicence.objects.get(company=company)
    assert licence.content_type == "application/pdf"
    assert licence.file.read() == PDF
    page = client.get(reverse("dashboard"))
    assert page.context["user"] == owner
    assert "实名认证" in page.content.decode()


@pytest.mark.parametrize(
    ("content", "expected"), [(PNG, "image/png"), (JPEG, "image/jpeg")]
)
def test_the_licence_type_is_taken_from_the_content_not_the_name(
    client, content, expected
):
    AgentFactory()

    client.post(
        reverse("accounts:signup"),
        {**signup_data(), "licence": upload(content, "scan.pdf", "application/pdf")},
    )

    assert BusinessLicence.objects.get().content_type == expected


def test_a_file_that_is_not_a_licence_format_creates_nothing_even_named_pdf(client):
    AgentFactory()

    response = client.post(
        reverse("accounts:signup"),
        {**signup_data(), "licence": upload(EXE, "licence.pdf", "application/pdf")},
    )

    assert response.status_code == 200
    assert "licence" in response.context["form"].errors
    assert _nothing_created()
    # What the user typed is kept.
    assert "深圳市测试科技有限公司" in response.content.decode()


def test_a_licence_over_5_mb_creates_nothing_and_says_why(client):
    AgentFactory()
    too_big = PDF + b"0" * (MAX + 1 - len(PDF))

    response = client.post(
        reverse("accounts:signup"), {**signup_data(), "licence": upload(too_big)}
    )

    assert response.status_code == 200
    errors = response.context["form"].errors["licence"]
    assert any("5 MB" in e for e in errors)
    assert _nothing_created()
    assert "深圳市测试科技有限公司" in response.content.decode()


def test_a_licence_of_exactly_5_mb_is_accepted(client):
    AgentFactory()
    exactly = PDF + b"0" * (MAX - len(PDF))

    client.post(
        reverse("accounts:signup"), {**signup_data(), "licence": upload(exactly)}
    )

    assert BusinessLicence.objects.get().size == MAX


class CountingBody(io.RawIOBase):
    """A multipart body with a big file, generated as it is read."""

    def __init__(self, boundary: str, fields: dict, file_size: int):
        head = "".join(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'
            for k, v in fields.items()
        )
        head += (
            f'--{boundary}\r\nContent-Disposition: form-data; name="licence"; '
            f'filename="big.pdf"\r\nContent-Type: application/pdf\r\n\r\n%PDF-'
        )
        self.head = head.encode()
        self.tail = f"\r\n--{boundary}--\r\n".encode()
        self.file_size = file_size
        self.length = len(self.head) + file_size - 5 + len(self.tail)
        self.position = 0

    def readable(self):
        return True

    def _byte_range(self, start: int, end: int) -> bytes:
        file_end = self.length - len(self.tail)
        parts = []
        if start < len(self.head):
            parts.append(self.head[start : min(end, len(self.head))])
        lo, hi = max(start, len(self.head)), min(end, file_end)
        if hi > lo:
            parts.append(b"0" * (hi - lo))
        if end > file_end:
            parts.append(self.tail[max(start, file_end) - file_end : end - file_end])
        return b"".join(parts)

    def readinto(self, buffer):
        n = min(len(buffer), self.length - self.position)
        buffer[:n] = self._byte_range(self.position, self.position + n)
        self.position += n
        return n


def test_an_oversized_upload_is_stopped_before_the_whole_body_is_read():
    AgentFactory()
    boundary = "BoUnDaRy400"
    body = CountingBody(boundary, signup_data(), file_size=40 * 1024 * 1024)
    request = RequestFactory().generic(
        "POST",
        reverse("accounts:signup"),
        content_type=f"multipart/form-data; boundary={boundary}",
    )
    # generic() without data sets no content type: set it, or nothing is parsed.
    request.META["CONTENT_TYPE"] = f"multipart/form-data; boundary={boundary}"
    request.META["CONTENT_LENGTH"] = str(body.length)
    request._set_content_type_params(request.META)
    request._stream = LimitedStream(io.BufferedReader(body), body.length)
    request._dont_enforce_csrf_checks = True
    request.user = AnonymousUser()
    request.session = {}
    request.LANGUAGE_CODE = "en"

    response = views.signup(request)

    assert response.status_code == 200
    assert request.upload_too_large
    assert MAX < body.position < MAX + 1024 * 1024
    assert Company.objects.count() == 0


def test_a_bad_upload_after_valid_details_creates_nothing_in_any_table(client):
    AgentFactory()
    before = User.objects.count()

    client.post(
        reverse("accounts:signup"),
        {**signup_data(), "licence": upload(b"", "licence.pdf")},
    )

    assert User.objects.count() == before
    assert _nothing_created()


def test_a_wrong_check_digit_is_shown_on_the_form(client):
    AgentFactory()
    data = signup_data()
    data["uscc"] = data["uscc"][:-1] + ("0" if data["uscc"][-1] != "0" else "1")

    response = client.post(reverse("accounts:signup"), {**data, "licence": upload(PDF)})

    assert "uscc" in response.context["form"].errors
    assert Company.objects.count() == 0


def test_a_phone_that_is_not_chinese_is_refused(client):
    AgentFactory()

    response = client.post(
        reverse("accounts:signup"),
        {**signup_data(contact_phone="+1 202 555 0100"), "licence": upload(PDF)},
    )

    assert "contact_phone" in response.context["form"].errors
    assert Company.objects.count() == 0


def test_a_registered_uscc_or_email_is_refused(client):
    existing = CompanyFactory()
    UserFactory(email="zhang.san@example.cn", company=existing)

    response = client.post(
        reverse("accounts:signup") + f"?agent={existing.agent_id}",
        {**signup_data(uscc=existing.uscc), "licence": upload(PDF)},
    )

    errors = response.context["form"].errors
    assert "uscc" in errors
    assert "owner_email" in errors
    assert Company.objects.count() == 1


def test_the_agent_comes_from_the_link_when_there_are_several(client):
    AgentFactory()
    chosen = AgentFactory()

    page = client.get(reverse("accounts:signup") + f"?agent={chosen.pk}")
    assert "agent" not in page.context["form"].fields
    client.post(
        reverse("accounts:signup") + f"?agent={chosen.pk}",
        {**signup_data(), "licence": upload(PDF)},
    )

    assert Company.objects.get().agent == chosen


def test_with_several_agents_and_no_link_the_agent_must_be_chosen(client):
    AgentFactory()
    second = AgentFactory()

    missing = client.post(
        reverse("accounts:signup"), {**signup_data(), "licence": upload(PDF)}
    )
    assert "agent" in missing.context["form"].errors
    client.post(
        reverse("accounts:signup"),
        {**signup_data(), "agent": second.pk, "licence": upload(PDF)},
    )

    assert Company.objects.get().agent == second


def test_an_owner_of_a_rejected_company_uploads_a_new_licence(client, company, owner):
    company.verification_status = Company.Verification.REJECTED
    company.verification_reason = "照片模糊"
    company.save()
    client.force_login(owner)

    page = client.get(reverse("accounts:licence_upload"))
    assert "照片模糊" in page.content.decode()
    response = client.post(
        reverse("accounts:licence_upload"), {"licence": upload(PNG, "new.png")}
    )

    assert response.status_code == 302
    company.refresh_from_db()
    assert company.verification_status == Company.Verification.PENDING
    assert company.verification_reason == ""
    assert company.licences.get().content_type == "image/png"


def test_a_bad_new_licence_leaves_the_rejection_as_it_was(client, company, owner):
    company.verification_status = Company.Verification.REJECTED
    company.save()
    client.force_login(owner)

    response = client.post(
        reverse("accounts:licence_upload"), {"licence": upload(EXE, "new.pdf")}
    )

    assert response.status_code == 200
    company.refresh_from_db()
    assert company.verification_status == Company.Verification.REJECTED
    assert company.licences.count() == 0
    assert _media_files() == []


def test_sign_up_still_checks_the_csrf_token(db):
    from django.test import Client

    AgentFactory()
    browser = Client(enforce_csrf_checks=True)
    page = browser.get(reverse("accounts:signup"))
    token = page.context["csrf_token"]

    forged = browser.post(
        reverse("accounts:signup"), {**signup_data(), "licence": upload(PDF)}
    )
    genuine = browser.post(
        reverse("accounts:signup"),
        {**signup_data(), "csrfmiddlewaretoken": token, "licence": upload(PDF)},
    )

    assert forged.status_code == 403
    assert genuine.status_code == 302
    assert Company.objects.count() == 1


def test_licence_upload_still_checks_the_csrf_token(company, owner):
    from django.test import Client

    company.verification_status = Company.Verification.REJECTED
    company.save()
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(owner)

    forged = browser.post(reverse("accounts:licence_upload"), {"licence": upload(PDF)})

    assert forged.status_code == 403
    assert company.licences.count() == 0
