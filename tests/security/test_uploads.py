"""Uploads: stopped at their size limit while received, CSRF-checked, kept
outside the web root and served only to those allowed.

(The licence upload's limit, type sniffing and CSRF are in
tests/accounts/test_signup.py; these add the CDR upload of the back office
and the storage and serving rules shared by both.)
"""

import io
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.contrib.sessions.backends.db import SessionStore
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.handlers.wsgi import LimitedStream
from django.test import Client, RequestFactory
from django.urls import resolve, reverse
from django.utils import translation

from billing.models import CdrImport
from tests.factories import AgentStaffFactory, UserFactory
from tests.security.walk import build_world

pytestmark = pytest.mark.django_db

UPLOAD = "admin:billing_cdrimport_add"


class GeneratedBody(io.RawIOBase):
    """A multipart body with one big file, generated as it is read."""

    def __init__(self, boundary: str, field: str, file_size: int):
        self.head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; '
            f'filename="calls.csv"\r\nContent-Type: text/csv\r\n\r\n'
        ).encode()
        self.tail = f"\r\n--{boundary}--\r\n".encode()
        self.length = len(self.head) + file_size + len(self.tail)
        self.position = 0

    def readable(self):
        return True

    def readinto(self, buffer):
        n = min(len(buffer), self.length - self.position)
        data = bytearray(b"0" * n)
        for i in range(n):
            p = self.position + i
            if p < len(self.head):
                data[i] = self.head[p]
            elif p >= self.length - len(self.tail):
                data[i] = self.tail[p - (self.length - len(self.tail))]
            if len(self.head) <= p < self.length - len(self.tail) and i > 64:
                break  # the rest of this chunk is file bytes: already "0"
        buffer[:n] = bytes(data)
        self.position += n
        return n


def test_an_oversized_cdr_upload_is_stopped_before_the_body_is_read(settings):
    settings.HOTLINE_CDR_UPLOAD_MAX_BYTES = 1024 * 1024
    staff = AgentStaffFactory()
    boundary = "BoUnDaRy400"
    body = GeneratedBody(boundary, "file", file_size=30 * 1024 * 1024)
    request = RequestFactory().generic(
        "POST",
        reverse(UPLOAD),
        content_type=f"multipart/form-data; boundary={boundary}",
    )
    request.META["CONTENT_TYPE"] = f"multipart/form-data; boundary={boundary}"
    request.META["CONTENT_LENGTH"] = str(body.length)
    request._set_content_type_params(request.META)
    request._stream = LimitedStream(io.BufferedReader(body), body.length)
    request._dont_enforce_csrf_checks = True
    request.user = staff
    request.session = SessionStore()
    request.LANGUAGE_CODE = "en"

    with translation.override("en"):
        response = resolve(reverse(UPLOAD)).func(request)
        response.render()

    assert response.status_code == 200
    assert b"larger than 1.0" in response.content
    assert request.upload_too_large
    assert 1024 * 1024 < body.position < 3 * 1024 * 1024, "the whole body was read"
    assert CdrImport.objects.count() == 0
    assert not list(Path(settings.MEDIA_ROOT).rglob("*.csv"))


def test_a_cdr_upload_at_the_limit_is_accepted_and_one_over_is_not(settings):
    settings.HOTLINE_CDR_UPLOAD_MAX_BYTES = 2000
    staff = Client(HTTP_ACCEPT_LANGUAGE="en")
    staff.force_login(AgentStaffFactory())
    header = b"call_id,number,caller,start,duration,direction,status\n"

    staff.post(
        reverse(UPLOAD),
        {"file": SimpleUploadedFile("a.csv", header + b"x" * (2000 - len(header)))},
    )
    over = staff.post(
        reverse(UPLOAD),
        {"file": SimpleUploadedFile("b.csv", header + b"x" * (2001 - len(header)))},
    )

    assert CdrImport.objects.filter(original_name="a.csv").count() == 1
    assert over.status_code == 200 and b"larger than" in over.content
    assert not CdrImport.objects.filter(original_name="b.csv").exists()


def test_the_cdr_upload_still_checks_the_csrf_token():
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(AgentStaffFactory())

    forged = browser.post(
        reverse(UPLOAD), {"file": SimpleUploadedFile("c.csv", b"call_id\n")}
    )

    assert forged.status_code == 403
    assert CdrImport.objects.count() == 0


def test_uploads_are_stored_outside_every_web_root_and_have_no_url():
    media = Path(django_settings.MEDIA_ROOT).resolve()
    web_roots = [Path(django_settings.STATIC_ROOT).resolve()] + [
        Path(p).resolve() for p in django_settings.STATICFILES_DIRS
    ]
    world = build_world()
    stored = Path(world.licence.file.path).resolve()

    assert stored.is_relative_to(media)
    assert not any(media.is_relative_to(root) for root in web_roots)
    assert not any(root.is_relative_to(media) for root in web_roots)
    anyone = Client()
    anyone.force_login(world.owner)
    name = world.licence.file.name
    for url in (
        f"{django_settings.MEDIA_URL}{name}",
        f"/media/{name}",
        f"/static/{name}",
        f"/static/../media/{name}",
    ):
        assert anyone.get(url).status_code == 404, url


@pytest.mark.parametrize(
    ("who", "status"),
    [
        ("owner", 200),
        ("staff", 200),
        ("finance", 404),
        ("member", 404),
        ("other_agent_staff", 404),
        ("anonymous", 302),
    ],
)
def test_a_licence_is_served_only_to_the_owners_and_the_agents_staff(who, status):
    world = build_world()
    users = {
        "owner": world.owner,
        "staff": world.staff,
        "finance": UserFactory(company=world.company, role="finance"),
        "member": world.member,
        "other_agent_staff": AgentStaffFactory(),
        "anonymous": None,
    }
    client = Client()
    if users[who] is not None:
        client.force_login(users[who])

    response = client.get(reverse("accounts:licence", args=[world.licence.pk]))

    assert response.status_code == status
    if status == 200:
        assert b"".join(response.streaming_content).startswith(b"%PDF")
        assert response["Content-Type"] == "application/pdf"
