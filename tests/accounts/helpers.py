"""Small files and form data shared by the accounts tests."""

from django.core.files.uploadedfile import SimpleUploadedFile

from tests.factories import PASSWORD, make_uscc

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << >>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64
# A Windows executable wearing a PDF's name and content type.
EXE = b"MZ\x90\x00\x03\x00\x00\x00" + b"\x00" * 64


def upload(content: bytes, name="licence.pdf", content_type="application/pdf"):
    return SimpleUploadedFile(name, content, content_type=content_type)


def signup_data(n: int = 900_001, **overrides) -> dict:
    data = {
        "company_name": "深圳市测试科技有限公司",
        "uscc": make_uscc(n),
        "address": "广东省深圳市南山区科技园1号",
        "billing_email": "Billing@Example.cn",
        "contact_phone": "138 0013 8000",
        "owner_name": "张三",
        "owner_email": "Zhang.San@Example.cn",
        "password1": PASSWORD,
        "password2": PASSWORD,
    }
    data.update(overrides)
    return data
