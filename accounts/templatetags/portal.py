"""Formatting for the portal: money as ¥1,234.50, 400 numbers, phones."""

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from django import template

from accounts.validators import format_cn_phone

register = template.Library()


@register.filter
def money(value, places: int = 2) -> str:
    """CNY as shown in China: ``¥1,234.50``; negative as ``-¥12.00``."""
    if value is None or value == "":
        return ""
    try:
        amount = Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        return str(value)
    quantum = Decimal(1).scaleb(-int(places))
    amount = amount.quantize(quantum, rounding=ROUND_HALF_UP)
    sign = "-" if amount < 0 else ""
    return f"{sign}¥{abs(amount):,.{int(places)}f}"


@register.filter
def rate(value) -> str:
    """A per-minute rate: ``¥0.1200``."""
    return money(value, 4)


@register.filter
def number400(value) -> str:
    """``4008108888`` → ``400-810-8888``."""
    digits = "".join(ch for ch in str(value or "") if ch.isdigit())
    if len(digits) != 10:
        return str(value or "")
    return f"{digits[:3]}-{digits[3:6]}-{digits[6:]}"


@register.filter
def phone(value) -> str:
    """An E.164 Chinese number the way Chinese users write it."""
    return format_cn_phone(value) if value else ""
