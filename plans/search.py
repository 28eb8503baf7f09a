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
    """A LIKE pattern plus the digit tokens that narrow it on an index.

    ``token_sets`` has one list of tokens per place the pattern could sit in
    a number (one for a whole-number pattern); a number can match only if
    its ``digit_tokens`` contain every token of one list. None when some
    place has no digit after 400, so no token can narrow the search.
    """

    like: str
    whole: bool
    token_sets: tuple[tuple[int, ...], ...] | None = None

    @property
    def expected_share(self) -> float:
        """The share of all numbers expected to match (digits uniform)."""
        if self.token_sets is None:
            return 1.0
        return min(1.0, sum(token_share(t) for t in self.token_sets))


# --- positional digit tokens --------------------------------------------------
# A number's 7 subscriber digits (positions 4–10, 1-based) as integers that
# say "digit(s) X at position P": single digits, pairs and triples. A GIN
# index on them (migration 0004, function plans_digit_tokens) finds numbers
# by digits at fixed places, which trigrams cannot: ``400*3*2*75`` has no
# three known digits in a row. Keep in step with the SQL function.
FIRST = len(PREFIX) + 1


def digit_tokens(number: str) -> list[int]:
    """The tokens of a canonical number, as ``plans_digit_tokens`` computes."""
    singles = [100 + i * 10 + int(number[i - 1]) for i in range(FIRST, LENGTH + 1)]
    pairs = [1000 + i * 100 + int(number[i - 1 : i + 1]) for i in range(FIRST, LENGTH)]
    triples = [
        10000 + i * 1000 + int(number[i - 1 : i + 2]) for i in range(FIRST, LENGTH - 1)
    ]
    return singles + pairs + triples


def token_share(tokens: tuple[int, ...]) -> float:
    """The share of numbers holding all ``tokens`` (digits uniform)."""
    share = 1.0
    for token in tokens:
        share /= 1000 if token >= 10000 else 100 if token >= 1000 else 10
    return share


def _cover(literals: dict[int, str]) -> tuple[int, ...]:
    """The fewest, most selective tokens implied by known digits."""
    tokens: list[int] = []
    positions = sorted(literals)
    runs: list[list[int]] = []
    for pos in positions:
        if runs and runs[-1][-1] == pos - 1:
            runs[-1].append(pos)
        else:
            runs.append([pos])
    for run in runs:
        digits = "".join(literals[p] for p in run)
        start, length = run[0], len(run)
        i = 0
        while length - i >= 3:
            tokens.append(10000 + (start + i) * 1000 + int(digits[i : i + 3]))
            i += 3
        rest = length - i
        if rest and length >= 3:
            # Overlap the last triple rather than fall back to a weak token.
            tokens.append(10000 + (start + length - 3) * 1000 + int(digits[-3:]))
        elif rest == 2:
            tokens.append(1000 + (start + i) * 100 + int(digits[i:]))
        elif rest == 1:
            tokens.append(100 + (start + i) * 10 + int(digits[i]))
    return tuple(sorted(tokens))


def pattern_token_sets(text: str) -> tuple[tuple[int, ...], ...] | None:
    """Token lists for a pattern of digits and ``*``, one per alignment.

    A 10-character pattern has one alignment; a shorter one may start at any
    place its known digits agree with the 400 prefix. Returns None when an
    alignment puts no known digit after the prefix (nothing to narrow by),
    and an empty tuple when the pattern can match no number at all.
    """
    k = len(text)
    sets: list[tuple[int, ...]] = []
    for start in range(1, LENGTH - k + 2):
        literals: dict[int, str] = {}
        fits = True
        for j, c in enumerate(text):
            pos = start + j
            if c == "*":
                continue
            if pos < FIRST:
                if PREFIX[pos - 1] != c:
                    fits = False
                    break
            else:
                literals[pos] = c
        if not fits:
            continue
        if not literals:
            return None
        sets.append(_cover(literals))
    return tuple(dict.fromkeys(sets))


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
        return LikePattern(like=like, whole=True, token_sets=pattern_token_sets(text))
    return LikePattern(
        like=f"%{like}%", whole=False, token_sets=pattern_token_sets(text)
    )


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
