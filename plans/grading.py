"""Vanity grading (靓号分级) as data: pure functions, no ORM.

A vanity grade carries a list of rules (JSON). A number matches a grade when
it matches **any** of its rules; among the active grades that match, the one
with the highest priority wins (ties: the smaller code). A number that matches
no grade is ordinary: no grade, no selection fee.

Rules look at the **7 digits after 400** (the subscriber part): the tail of a
number is the end of those 7 digits, and "anywhere" means anywhere inside
them — the 400 prefix itself never counts (every number starts with 4, 0, 0).

Rule types (``type`` key)::

    {"type": "repeat", "length": 4}                       # tail AAAA (8888)
    {"type": "repeat", "length": 4, "position": "anywhere"}
    {"type": "pattern", "patterns": ["AABB", "ABAB", "ABBA"]}
    {"type": "run", "length": 4, "direction": "both"}     # 1234 or 9876
    {"type": "lucky_ending", "endings": ["8", "88", "168", "520"]}
    {"type": "no_digit", "digit": "4"}                    # 无4
    {"type": "all", "rules": [{...}, {...}]}              # every sub-rule

- ``repeat``: ``length`` (2–7) equal digits.
- ``pattern``: letter patterns of 2–7 letters A–Z: the same letter is the same
  digit, different letters are different digits (``AABB`` matches 3388, not
  3333).
- ``run``: ``length`` (3–7) consecutive digits ascending (0123 … 6789),
  descending (9876 … 3210) or ``both`` (the default). No wrap-around: 7890 is
  not a run.
- ``lucky_ending``: the tail is one of ``endings`` (1–7 digits each); the
  reason names the longest ending that matched.
- ``no_digit``: none of the 7 digits is ``digit``.
- ``all``: every sub-rule matches; the reason joins theirs.

``repeat``, ``pattern`` and ``run`` take ``"position": "tail"`` (default) or
``"anywhere"``.

``compile_grades`` turns grade specs into a ``Grader`` once; calling it on a
canonical number costs a few set look-ups, so a million numbers grade in a
few seconds.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.utils.translation import gettext as _

SUBSCRIBER_DIGITS = 7
RULE_TYPES = ("repeat", "pattern", "run", "lucky_ending", "no_digit", "all")
POSITIONS = ("tail", "anywhere")
DIRECTIONS = ("ascending", "descending", "both")
# Patterns with more distinct letters than this are checked by shape instead
# of by a precomputed set of matching strings (P(10, 5) = 30,240 strings).
_MAX_ENUMERATED_LETTERS = 4

#: A compiled rule: the 7 subscriber digits → a reason, or None.
Matcher = Callable[[str], "str | None"]


class InvalidRules(ValueError):
    """Rules that cannot be compiled; ``errors`` lists each problem by path."""

    def __init__(self, errors: list[str]):
        super().__init__("; ".join(errors))
        self.errors = errors


@dataclass(frozen=True)
class GradeSpec:
    """What grading needs of a VanityGrade (plain data, no ORM)."""

    code: str
    priority: int
    rules: Sequence[Mapping[str, Any]]
    selection_fee: Decimal = Decimal("0")


@dataclass(frozen=True)
class GradeResult:
    code: str | None
    reason: str = ""
    selection_fee: Decimal = field(default=Decimal("0"))

    @property
    def is_vanity(self) -> bool:
        return self.code is not None


ORDINARY = GradeResult(None, "", Decimal("0"))


# ---------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_length(rule, path, lo, hi, errors):
    length = rule.get("length")
    if not _is_int(length) or not lo <= length <= hi:
        errors.append(
            f"{path}.length: "
            + _("must be a whole number from %(lo)s to %(hi)s") % {"lo": lo, "hi": hi}
        )


def _check_position(rule, path, errors):
    position = rule.get("position", "tail")
    if position not in POSITIONS:
        errors.append(
            f"{path}.position: "
            + _("must be one of %(choices)s") % {"choices": ", ".join(POSITIONS)}
        )


def _is_digits(value: Any, lo: int, hi: int) -> bool:
    return (
        isinstance(value, str)
        and lo <= len(value) <= hi
        and all("0" <= ch <= "9" for ch in value)
    )


_ALLOWED_KEYS = {
    "repeat": {"type", "length", "position"},
    "pattern": {"type", "patterns", "position"},
    "run": {"type", "length", "direction", "position"},
    "lucky_ending": {"type", "endings"},
    "no_digit": {"type", "digit"},
    "all": {"type", "rules"},
}


def validate_rule(rule: Any, path: str) -> list[str]:
    """Every problem with one rule, each prefixed by ``path``."""
    if not isinstance(rule, Mapping):
        return [f"{path}: " + _("must be a mapping with a type")]
    kind = rule.get("type")
    if kind not in RULE_TYPES:
        return [
            f"{path}.type: "
            + _("unknown rule type %(type)r; use one of %(choices)s")
            % {"type": kind, "choices": ", ".join(RULE_TYPES)}
        ]
    errors: list[str] = []
    for key in sorted(set(rule) - _ALLOWED_KEYS[kind], key=str):
        errors.append(
            f"{path}.{key}: " + _("unknown key for a %(type)s rule") % {"type": kind}
        )
    if kind == "repeat":
        _check_length(rule, path, 2, SUBSCRIBER_DIGITS, errors)
        _check_position(rule, path, errors)
    elif kind == "run":
        _check_length(rule, path, 3, SUBSCRIBER_DIGITS, errors)
        _check_position(rule, path, errors)
        if rule.get("direction", "both") not in DIRECTIONS:
            errors.append(
                f"{path}.direction: "
                + _("must be one of %(choices)s") % {"choices": ", ".join(DIRECTIONS)}
            )
    elif kind == "pattern":
        _check_position(rule, path, errors)
        patterns = rule.get("patterns")
        if not isinstance(patterns, list) or not patterns:
            errors.append(f"{path}.patterns: " + _("must be a non-empty list"))
        else:
            for i, pattern in enumerate(patterns):
                if not (
                    isinstance(pattern, str)
                    and 2 <= len(pattern) <= SUBSCRIBER_DIGITS
                    and all("A" <= ch <= "Z" for ch in pattern)
                ):
                    errors.append(
                        f"{path}.patterns[{i}]: "
                        + _("must be 2 to 7 capital letters, e.g. AABB")
                    )
    elif kind == "lucky_ending":
        endings = rule.get("endings")
        if not isinstance(endings, list) or not endings:
            errors.append(f"{path}.endings: " + _("must be a non-empty list"))
        else:
            for i, ending in enumerate(endings):
                if not _is_digits(ending, 1, SUBSCRIBER_DIGITS):
                    errors.append(
                        f"{path}.endings[{i}]: "
                        + _("must be 1 to 7 digits, written as text")
                    )
    elif kind == "no_digit":
        if not _is_digits(rule.get("digit"), 1, 1):
            errors.append(f"{path}.digit: " + _('must be one digit, e.g. "4"'))
    elif kind == "all":
        subrules = rule.get("rules")
        if not isinstance(subrules, list) or not subrules:
            errors.append(f"{path}.rules: " + _("must be a non-empty list"))
        else:
            for i, sub in enumerate(subrules):
                errors.extend(validate_rule(sub, f"{path}.rules[{i}]"))
    return errors


def validate_rules(rules: Any, path: str = "rules") -> list[str]:
    """Every problem with a grade's rule list (empty list: all good)."""
    if not isinstance(rules, list):
        return [f"{path}: " + _("must be a list of rules")]
    errors: list[str] = []
    for i, rule in enumerate(rules):
        errors.extend(validate_rule(rule, f"{path}[{i}]"))
    return errors


# ---------------------------------------------------------------------------
# Letter patterns and runs
# ---------------------------------------------------------------------------


def shape(digits: str) -> str:
    """The letter pattern of ``digits``: ``"3388"`` → ``"AABB"``."""
    letters: dict[str, str] = {}
    out = []
    for ch in digits:
        if ch not in letters:
            letters[ch] = chr(ord("A") + len(letters))
        out.append(letters[ch])
    return "".join(out)


def matches_pattern(digits: str, pattern: str) -> bool:
    """Same letter ⇔ same digit, over the whole of ``digits``."""
    return len(digits) == len(pattern) and shape(digits) == shape(pattern)


def expand_pattern(pattern: str) -> frozenset[str]:
    """All digit strings matching a letter pattern (for few letters)."""
    normal = shape(pattern)
    letters = sorted(set(normal))
    found = set()
    for digits in itertools.permutations("0123456789", len(letters)):
        table = dict(zip(letters, digits, strict=True))
        found.add("".join(table[ch] for ch in normal))
    return frozenset(found)


def runs(length: int, direction: str) -> frozenset[str]:
    ascending = {"0123456789"[i : i + length] for i in range(11 - length)}
    descending = {s[::-1] for s in ascending}
    if direction == "ascending":
        return frozenset(ascending)
    if direction == "descending":
        return frozenset(descending)
    return frozenset(ascending | descending)


# ---------------------------------------------------------------------------
# Compilation
# ---------------------------------------------------------------------------


def _set_matcher(
    strings: frozenset[str], length: int, position: str, describe
) -> Matcher:
    if position == "tail":
        start = SUBSCRIBER_DIGITS - length

        def tail(digits: str) -> str | None:
            piece = digits[start:]
            return describe(piece) if piece in strings else None

        return tail

    offsets = range(SUBSCRIBER_DIGITS - length, -1, -1)  # prefer the tail

    def anywhere(digits: str) -> str | None:
        for i in offsets:
            piece = digits[i : i + length]
            if piece in strings:
                return describe(piece)
        return None

    return anywhere


def _shape_matcher(pattern: str, position: str, describe) -> Matcher:
    length = len(pattern)
    normal = shape(pattern)
    offsets = (
        [SUBSCRIBER_DIGITS - length]
        if position == "tail"
        else range(SUBSCRIBER_DIGITS - length, -1, -1)
    )

    def match(digits: str) -> str | None:
        for i in offsets:
            piece = digits[i : i + length]
            if shape(piece) == normal:
                return describe(piece)
        return None

    return match


def _describer(position: str, label: str):
    if position == "tail":
        template = _("tail %(digits)s (%(label)s)")
    else:
        template = _("contains %(digits)s (%(label)s)")
    return lambda piece: template % {"digits": piece, "label": label}


def _first(matchers: list[Matcher]) -> Matcher:
    if len(matchers) == 1:
        return matchers[0]

    def match(digits: str) -> str | None:
        for m in matchers:
            reason = m(digits)
            if reason is not None:
                return reason
        return None

    return match


def compile_rule(rule: Mapping[str, Any]) -> Matcher:
    """One validated rule → a matcher over the 7 subscriber digits."""
    kind = rule["type"]
    position = rule.get("position", "tail")
    if kind == "repeat":
        length = rule["length"]
        strings = frozenset(d * length for d in "0123456789")
        return _set_matcher(
            strings, length, position, _describer(position, "A" * length)
        )
    if kind == "run":
        length = rule["length"]
        direction = rule.get("direction", "both")
        matchers = []
        for way, label in (
            ("ascending", _("ascending run")),
            ("descending", _("descending run")),
        ):
            if direction in (way, "both"):
                matchers.append(
                    _set_matcher(
                        runs(length, way), length, position, _describer(position, label)
                    )
                )
        return _first(matchers)
    if kind == "pattern":
        # Longer patterns first, so AABBCC is reported rather than its BBCC.
        matchers = []
        for pattern in sorted(rule["patterns"], key=len, reverse=True):
            describe = _describer(position, pattern)
            if len(set(pattern)) <= _MAX_ENUMERATED_LETTERS:
                matchers.append(
                    _set_matcher(
                        expand_pattern(pattern), len(pattern), position, describe
                    )
                )
            else:
                matchers.append(_shape_matcher(pattern, position, describe))
        return _first(matchers)
    if kind == "lucky_ending":
        endings = set(rule["endings"])
        by_length = [
            (n, frozenset(e for e in endings if len(e) == n))
            for n in sorted({len(e) for e in endings}, reverse=True)
        ]
        template = _("lucky ending %(digits)s")

        def lucky(digits: str) -> str | None:
            for length, strings in by_length:
                piece = digits[SUBSCRIBER_DIGITS - length :]
                if piece in strings:
                    return template % {"digits": piece}
            return None

        return lucky
    if kind == "no_digit":
        digit = rule["digit"]
        reason = _("no digit %(digit)s in the 7 digits after 400") % {"digit": digit}

        def no_digit(digits: str) -> str | None:
            return None if digit in digits else reason

        return no_digit
    if kind == "all":
        subs = [compile_rule(sub) for sub in rule["rules"]]

        def every(digits: str) -> str | None:
            reasons = []
            for m in subs:
                reason = m(digits)
                if reason is None:
                    return None
                reasons.append(reason)
            return " + ".join(reasons)

        return every
    raise InvalidRules([f"type: {kind!r}"])  # unreachable after validation


def compile_rules(rules: Sequence[Mapping[str, Any]], path: str = "rules") -> Matcher:
    errors = validate_rules(list(rules) if isinstance(rules, tuple) else rules, path)
    if errors:
        raise InvalidRules(errors)
    if not rules:
        return lambda digits: None
    return _first([compile_rule(rule) for rule in rules])


class Grader:
    """Grades canonical 400 numbers against a fixed set of grades."""

    def __init__(self, grades: Iterable[GradeSpec]):
        ordered = sorted(grades, key=lambda g: (-g.priority, g.code))
        self._grades = [
            (g, compile_rules(g.rules, f"grades[{g.code}].rules")) for g in ordered
        ]

    def __call__(self, number: str) -> GradeResult:
        digits = number[3:]
        for spec, match in self._grades:
            reason = match(digits)
            if reason is not None:
                return GradeResult(spec.code, reason, spec.selection_fee)
        return ORDINARY


def compile_grades(grades: Iterable[GradeSpec]) -> Grader:
    """Compile once, grade many: ``compile_grades(specs)("4008108888")``."""
    return Grader(grades)


def grade_number(number: str, grades: Iterable[GradeSpec]) -> tuple[str | None, str]:
    """One-off convenience: ``(grade code or None, reason)``."""
    result = compile_grades(grades)(number)
    return result.code, result.reason


def has_four(number: str) -> bool:
    """Whether the 7 digits after 400 contain a 4 (for the 无4 filter)."""
    return "4" in number[3:]
