"""400 numbers as text: canonical form, display form, carrier by block.

Pure functions, no ORM. The canonical form is the 10 ASCII digits
(``4008108888``); people see ``400-810-8888``.

Accepted input: the 10 digits, optionally split into groups by single spaces
or hyphens (``400-810-8888``, ``400 810 8888``, ``400-8108-888``), with
surrounding whitespace, in half- or full-width characters. Anything else is
refused — in particular numbers damaged by a spreadsheet (``4.008E+09``,
``4008108888.0``): we never guess which number was meant.
"""

import re
import unicodedata
from collections.abc import Mapping

from django.utils.translation import gettext as _

PREFIX = "400"
LENGTH = 10

# Digits in groups separated by one space or one hyphen, nothing else.
_SHAPE = re.compile(r"[0-9]+(?:[ \-][0-9]+)*")
_CANONICAL = re.compile(r"400[0-9]{7}")
# Dashes and spaces people paste from documents and chat apps.
_SEPARATORS = str.maketrans(
    {
        "\u2010": "-",  # hyphen
        "\u2011": "-",  # non-breaking hyphen
        "\u2012": "-",  # figure dash
        "\u2013": "-",  # en dash
        "\u2212": "-",  # minus sign
        "\u00a0": " ",  # no-break space
        "\u3000": " ",  # ideographic space
        "\t": " ",
    }
)


class InvalidNumber(ValueError):
    """The text is not a 400 number; ``str(exc)`` explains why to the user."""

    def __init__(self, message: str, value: object = None):
        super().__init__(message)
        self.message = message
        self.value = value


def canonicalize_400(value: str) -> str:
    """``" 400-810-8888 "`` → ``"4008108888"``; raise InvalidNumber otherwise."""
    if not isinstance(value, str):
        raise InvalidNumber(_("A 400 number must be given as text."), value)
    if _CANONICAL.fullmatch(value):
        return value  # the common case, on the hot path of imports
    text = unicodedata.normalize("NFKC", value).translate(_SEPARATORS).strip()
    if not text:
        raise InvalidNumber(_("Enter a 400 number."), value)
    if not _SHAPE.fullmatch(text):
        raise InvalidNumber(
            _(
                "“%(value)s” is not a 400 number: use digits, optionally "
                "separated by spaces or hyphens, e.g. 400-810-8888."
            )
            % {"value": value.strip()},
            value,
        )
    digits = text.replace(" ", "").replace("-", "")
    if len(digits) != LENGTH or not digits.startswith(PREFIX):
        raise InvalidNumber(
            _(
                "“%(value)s” is not a 400 number: it must have 10 digits "
                "and start with 400."
            )
            % {"value": value.strip()},
            value,
        )
    return digits


def format_400(number: str) -> str:
    """Any accepted form → ``400-810-8888``."""
    n = canonicalize_400(number)
    return f"{n[:3]}-{n[3:6]}-{n[6:]}"


def carrier_for(number: str, blocks: Mapping[str, str]) -> str | None:
    """The carrier of the longest block prefix ``number`` starts with, or None.

    ``blocks`` maps prefixes (``"4008"``) to carriers (``"telecom"``);
    ``number`` must be canonical.
    """
    best: str | None = None
    best_len = -1
    for prefix, carrier in blocks.items():
        if len(prefix) > best_len and number.startswith(prefix):
            best, best_len = carrier, len(prefix)
    return best


class CarrierLookup:
    """``carrier_for`` for many numbers against the same blocks, fast.

    Tries the number's prefixes from the longest block length down, so a
    lookup costs a few dict probes instead of a scan of every block.
    """

    def __init__(self, blocks: Mapping[str, str]):
        self._blocks = dict(blocks)
        self._lengths = sorted({len(p) for p in self._blocks}, reverse=True)

    def __call__(self, number: str) -> str | None:
        for n in self._lengths:
            carrier = self._blocks.get(number[:n])
            if carrier is not None:
                return carrier
        return None
