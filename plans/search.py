"""What a customer types into the number search, as SQL LIKE patterns.

Pure functions, no ORM. ``plans.selectors.number_search`` turns the results
into a query.

- A pattern uses ``*`` for "any digit", Twilio style. Ten characters describe
  the whole number (``400*8*8888``); a shorter pattern may match anywhere in
  it (``8*8*8``). Spaces and hyphens are ignored, full-width characters
  accepted.
- "Contains" and "ends with" take digits only.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from django.utils.translation import gettext as _

from plans.numbers import LENGTH, PREFIX

_SEPARATORS = re.compile(r"[\s\-\u2010-\u2013\u2212]+")
_PATTERN = re.compile(r"[0-9*]+")
_DIGITS = re.compile(r"[0-9]+")
# What the customer may type for "any digit".
_WILDCARDS = str.maketrans({"?": "*", "x": "*", "X": "*", "_": "*"})


class InvalidSearch(ValueError):
    """The search text cannot be used; ``str(exc)`` tells the user why."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


def _clean(value: str) -> str:
    text = unicodedata.normalize("NFKC", value or "")
    return _SEPARATORS.sub("", text)


@dataclass(frozen=True)
class LikePattern:
    """A LIKE pattern plus the literal ends of a whole-number pattern.

    ``prefix`` and ``suffix`` are the digits a whole-number pattern starts
    and ends with (``400*8*8888`` → ``"400"``, ``"8888"``): redundant with
    ``like``, they let the database use a btree range when no trigram is
    selective.
    """

    like: str
    whole: bool
    prefix: str = ""
    suffix: str = ""


def pattern_to_like(value: str) -> LikePattern:
    """``"400*8*8888"`` → ``LIKE '400_8_8888'``; ``"8*8"`` → ``'%8_8%'``."""
    text = _clean(value).translate(_WILDCARDS)
    if not text:
        raise InvalidSearch(_("Enter a pattern, e.g. 400*8*8888."))
    if not _PATTERN.fullmatch(text):
        raise InvalidSearch(
            _("A pattern has only digits and * (any digit), e.g. 400*8*8888.")
        )
    if len(text) > LENGTH:
        raise InvalidSearch(_("A pattern has at most 10 characters, e.g. 400*8*8888."))
    if text.strip("*") == "":
        raise InvalidSearch(_("A pattern needs at least one digit."))
    like = text.replace("*", "_")
    if len(text) == LENGTH:
        if any(c not in ("*", p) for c, p in zip(text, PREFIX, strict=False)):
            raise InvalidSearch(
                _("Every 400 number starts with 400: a 10-character pattern must too.")
            )
        head = re.match(r"[0-9]*", text).group(0)
        tail = re.search(r"[0-9]*$", text).group(0)
        return LikePattern(like=like, whole=True, prefix=head, suffix=tail)
    return LikePattern(like=f"%{like}%", whole=False)


def clean_digits(value: str, *, max_length: int, label: str) -> str:
    """Digits only (separators ignored), 1 to ``max_length`` of them."""
    text = _clean(value)
    if not _DIGITS.fullmatch(text):
        raise InvalidSearch(_("%(label)s takes digits only.") % {"label": label})
    if len(text) > max_length:
        raise InvalidSearch(
            _("%(label)s takes at most %(n)d digits.")
            % {"label": label, "n": max_length}
        )
    return text


def matches(number: str, like: str) -> bool:
    """Whether ``number`` matches a LIKE pattern of digits, ``_`` and ``%``.

    The reference semantics of the database's LIKE, for tests.
    """
    regex = "".join(
        "." if c == "_" else ".*" if c == "%" else re.escape(c) for c in like
    )
    return re.fullmatch(regex, number) is not None
