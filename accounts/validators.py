"""Validators for Chinese business identifiers and phone numbers."""

import phonenumbers
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _
from stdnum.cn import uscc
from stdnum.exceptions import (
    InvalidChecksum,
    InvalidComponent,
    InvalidFormat,
    InvalidLength,
)
from stdnum.exceptions import (
    ValidationError as StdnumError,
)


def normalize_uscc(value: str) -> str:
    """Return the compact, upper-case form of a 统一社会信用代码."""
    return uscc.compact(value or "")


def validate_uscc(value: str) -> None:
    """Check a 统一社会信用代码 (18 characters, GB 32100-2015 check digit)."""
    try:
        uscc.validate(value)
    except InvalidLength:
        raise ValidationError(
            _("A unified social credit code has 18 characters."), code="length"
        ) from None
    except InvalidChecksum:
        raise ValidationError(
            _("The check digit of this unified social credit code is wrong."),
            code="checksum",
        ) from None
    except (InvalidFormat, InvalidComponent, StdnumError):
        raise ValidationError(
            _("This is not a valid unified social credit code."), code="format"
        ) from None


def normalize_cn_phone(value: str) -> str:
    """Parse a Chinese mobile or landline number and return it in E.164.

    Raises ValidationError when the number is not a valid Chinese number.
    """
    raw = (value or "").strip()
    try:
        parsed = phonenumbers.parse(raw, "CN")
    except phonenumbers.NumberParseException:
        raise ValidationError(
            _(
                "Enter a valid Chinese mobile or landline number, e.g. 13800138000 "
                "or 010-12345678."
            ),
            code="phone",
        ) from None
    if parsed.country_code != 86 or not phonenumbers.is_valid_number(parsed):
        raise ValidationError(
            _(
                "Enter a valid Chinese mobile or landline number, e.g. 13800138000 "
                "or 010-12345678."
            ),
            code="phone",
        )
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def validate_cn_phone(value: str) -> None:
    normalize_cn_phone(value)


def format_cn_phone(value: str) -> str:
    """Show an E.164 Chinese number the way Chinese users write it."""
    try:
        parsed = phonenumbers.parse(value, "CN")
    except phonenumbers.NumberParseException:
        return value
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)


# --- business licence uploads -------------------------------------------------

# Leading bytes of the formats a business licence may have. The type is decided
# by these, never by the file name or the browser's Content-Type.
_LICENCE_SIGNATURES = (
    (b"%PDF-", "application/pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
)
LICENCE_SNIFF_BYTES = 16


def sniff_licence_type(head: bytes) -> str | None:
    """The MIME type of a licence file from its first bytes, or None."""
    for signature, content_type in _LICENCE_SIGNATURES:
        if head.startswith(signature):
            return content_type
    return None


def licence_too_large_error(max_bytes: int) -> ValidationError:
    return ValidationError(
        _("The file is too large: a business licence may be at most %(mb)s MB."),
        code="too_large",
        params={"mb": max_bytes // (1024 * 1024)},
    )


def validate_licence_file(uploaded, *, max_bytes: int) -> str:
    """Check an uploaded licence's size and content; return its MIME type."""
    if uploaded.size > max_bytes:
        raise licence_too_large_error(max_bytes)
    if uploaded.size == 0:
        raise ValidationError(_("The file is empty."), code="empty")
    uploaded.seek(0)
    head = uploaded.read(LICENCE_SNIFF_BYTES)
    uploaded.seek(0)
    content_type = sniff_licence_type(head)
    if content_type is None:
        raise ValidationError(
            _(
                "Upload the business licence as a JPEG, PNG or PDF file. This file "
                "is none of these, whatever its name says."
            ),
            code="file_type",
        )
    return content_type
