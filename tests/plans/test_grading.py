"""Vanity grading rules: each rule type, priorities, validation, properties."""

import itertools
from decimal import Decimal

import pytest
from django.utils import translation
from hypothesis import given
from hypothesis import strategies as st

from plans.grading import (
    GradeSpec,
    InvalidRules,
    compile_grades,
    compile_rules,
    expand_pattern,
    grade_number,
    has_four,
    matches_pattern,
    shape,
    validate_rules,
)


@pytest.fixture(autouse=True)
def _english():
    with translation.override("en"):
        yield


def matches(rule: dict, number: str) -> str | None:
    """The reason ``rule`` gives for ``number``, or None."""
    return compile_rules([rule])(number[3:])


# --- repeat ----------------------------------------------------------------


@pytest.mark.parametrize("number", ["4008108888", "4001230000", "4009999999"])
def test_repeat_tail_of_four_matches_aaaa(number):
    assert matches({"type": "repeat", "length": 4}, number)


@pytest.mark.parametrize("number", ["4008108887", "4008888123", "4008188887"])
def test_repeat_tail_of_four_refuses_other_tails(number):
    assert matches({"type": "repeat", "length": 4}, number) is None


def test_repeat_reason_names_the_digits_and_the_shape():
    assert matches({"type": "repeat", "length": 4}, "4008108888") == (
        "tail 8888 (AAAA)"
    )


def test_repeat_length_is_a_parameter():
    rule = {"type": "repeat", "length": 3}
    assert matches(rule, "4008108111") == "tail 111 (AAA)"
    assert matches(rule, "4008108811") is None


def test_repeat_anywhere_looks_inside_the_seven_digits_only():
    rule = {"type": "repeat", "length": 4, "position": "anywhere"}
    assert matches(rule, "4007777123") == "contains 7777 (AAAA)"
    # The 400 prefix never counts: 4000 + 00 is not "0000" inside the number.
    assert matches(rule, "4000012345") is None


# --- letter patterns ---------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "positive", "negative"),
    [
        ("AABB", "4008103388", "4008103333"),
        ("ABAB", "4008101212", "4008101111"),
        ("ABBA", "4008101221", "4008101111"),
        ("AABBCC", "4008113355", "4008113333"),
        ("AABBCC", "4001998877", "4001998899"),
        ("ABC", "4008101123", "4008101122"),
    ],
)
def test_letter_patterns_same_letter_same_digit_else_different(
    pattern, positive, negative
):
    rule = {"type": "pattern", "patterns": [pattern]}
    assert matches(rule, positive) == f"tail {positive[-len(pattern) :]} ({pattern})"
    assert matches(rule, negative) is None


def test_many_letter_patterns_are_checked_by_shape():
    rule = {"type": "pattern", "patterns": ["ABCDEFG"]}
    assert matches(rule, "4001234567")
    assert matches(rule, "4001234566") is None


def test_the_longest_pattern_is_reported():
    rule = {"type": "pattern", "patterns": ["AABB", "AABBCC"]}
    assert matches(rule, "4001113355") == "tail 113355 (AABBCC)"


def test_pattern_anywhere():
    rule = {"type": "pattern", "patterns": ["ABBA"], "position": "anywhere"}
    assert matches(rule, "4001881000") == "contains 1881 (ABBA)"


def test_shape_and_expansion_agree_on_small_patterns():
    strings = expand_pattern("AABB")
    assert len(strings) == 90  # 10 choices for A × 9 for B
    assert all(shape(s) == "AABB" for s in strings)


# --- runs ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "reason"),
    [
        ("4008101234", "tail 1234 (ascending run)"),
        ("4008106789", "tail 6789 (ascending run)"),
        ("4008109876", "tail 9876 (descending run)"),
        ("4008103210", "tail 3210 (descending run)"),
    ],
)
def test_runs_of_four_either_direction(number, reason):
    assert matches({"type": "run", "length": 4}, number) == reason


@pytest.mark.parametrize("number", ["4008107890", "4008101235", "4008101243"])
def test_non_runs_and_wraparound_do_not_match(number):
    assert matches({"type": "run", "length": 4}, number) is None


def test_run_direction_is_a_parameter():
    up = {"type": "run", "length": 4, "direction": "ascending"}
    down = {"type": "run", "length": 4, "direction": "descending"}
    assert matches(up, "4008101234") and not matches(up, "4008104321")
    assert matches(down, "4008104321") and not matches(down, "4008101234")


def test_run_length_is_a_parameter():
    rule = {"type": "run", "length": 6}
    assert matches(rule, "4008456789")
    assert matches(rule, "4008156789") is None


# --- lucky endings -----------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "reason"),
    [
        ("4008100008", "lucky ending 8"),
        ("4008100088", "lucky ending 88"),
        ("4008100888", "lucky ending 888"),
        ("4008100168", "lucky ending 168"),
        ("4008100518", "lucky ending 518"),
        ("4008100520", "lucky ending 520"),
        ("4008100666", "lucky ending 666"),
    ],
)
def test_lucky_endings_name_the_longest_ending(number, reason):
    rule = {
        "type": "lucky_ending",
        "endings": ["8", "88", "888", "168", "518", "520", "666"],
    }
    assert matches(rule, number) == reason


@pytest.mark.parametrize("number", ["4008100007", "4008100066", "4008100521"])
def test_other_endings_are_not_lucky(number):
    rule = {"type": "lucky_ending", "endings": ["8", "168", "520", "666"]}
    assert matches(rule, number) is None


# --- no digit 4 --------------------------------------------------------------


def test_no_four_looks_at_the_seven_digits_after_400():
    rule = {"type": "no_digit", "digit": "4"}
    assert matches(rule, "4008123567") == "no digit 4 in the 7 digits after 400"
    assert matches(rule, "4008123564") is None
    assert matches(rule, "4004000000") is None


def test_has_four_ignores_the_prefix():
    assert not has_four("4008123567")
    assert has_four("4008123467")


# --- all ---------------------------------------------------------------------


def test_all_needs_every_sub_rule_and_joins_the_reasons():
    rule = {
        "type": "all",
        "rules": [
            {"type": "no_digit", "digit": "4"},
            {"type": "lucky_ending", "endings": ["8"]},
        ],
    }
    assert matches(rule, "4008123568") == (
        "no digit 4 in the 7 digits after 400 + lucky ending 8"
    )
    assert matches(rule, "4008123468") is None
    assert matches(rule, "4008123567") is None


# --- grades and priorities ---------------------------------------------------

GRADES = [
    GradeSpec("supreme", 900, [{"type": "repeat", "length": 4}], Decimal("20000")),
    GradeSpec("deluxe", 800, [{"type": "repeat", "length": 3}], Decimal("5000")),
    GradeSpec(
        "premium",
        600,
        [{"type": "pattern", "patterns": ["AABB", "ABAB", "ABBA"]}],
        Decimal("2000"),
    ),
    GradeSpec(
        "lucky", 500, [{"type": "lucky_ending", "endings": ["8", "88"]}], Decimal("500")
    ),
]


def test_highest_priority_matching_grade_wins():
    grader = compile_grades(GRADES)
    # 8888 is AAAA, AAA, ABAB-free, and a lucky ending: supreme wins.
    result = grader("4008108888")
    assert (result.code, result.reason, result.selection_fee) == (
        "supreme",
        "tail 8888 (AAAA)",
        Decimal("20000"),
    )
    assert grader("4008100888").code == "deluxe"
    assert grader("4008103388").code == "premium"
    assert grader("4008101238").code == "lucky"


def test_order_of_specs_does_not_matter():
    assert compile_grades(reversed(GRADES))("4008108888").code == "supreme"


def test_lower_priority_wins_when_priorities_are_swapped():
    swapped = [
        GradeSpec("supreme", 100, GRADES[0].rules),
        GradeSpec("lucky", 999, GRADES[3].rules),
    ]
    assert grade_number("4008108888", swapped) == ("lucky", "lucky ending 88")


def test_equal_priorities_break_ties_by_code():
    tied = [
        GradeSpec("b", 5, [{"type": "lucky_ending", "endings": ["8"]}]),
        GradeSpec("a", 5, [{"type": "lucky_ending", "endings": ["8"]}]),
    ]
    assert grade_number("4008100008", tied)[0] == "a"


def test_a_number_matching_nothing_is_ordinary():
    result = compile_grades(GRADES)("4008102571")
    assert (result.code, result.reason, result.selection_fee) == (None, "", 0)
    assert not result.is_vanity


def test_a_grade_without_rules_matches_nothing():
    assert grade_number("4008108888", [GradeSpec("empty", 1, [])]) == (None, "")


def test_reasons_follow_the_active_language():
    with translation.override("zh-hans"):
        reason = grade_number("4008108888", GRADES)[1]
    assert "8888" in reason
    assert reason != "tail 8888 (AAAA)"


# --- validation ----------------------------------------------------------------


def test_validation_lists_every_problem_with_its_path():
    errors = validate_rules(
        [
            {"type": "repeat", "length": 9},
            {"type": "pattern", "patterns": ["AAbb", 3]},
            {"type": "sparkle"},
            {"type": "lucky_ending", "endings": [8]},
            {"type": "no_digit", "digit": "44"},
            {"type": "all", "rules": [{"type": "run", "length": 2, "colour": 1}]},
            "AAAA",
        ]
    )
    prefixes = [e.split(":")[0] for e in errors]
    assert prefixes == [
        "rules[0].length",
        "rules[1].patterns[0]",
        "rules[1].patterns[1]",
        "rules[2].type",
        "rules[3].endings[0]",
        "rules[4].digit",
        "rules[5].rules[0].colour",
        "rules[5].rules[0].length",
        "rules[6]",
    ]


def test_compiling_invalid_rules_raises_with_the_errors():
    with pytest.raises(InvalidRules) as excinfo:
        compile_rules([{"type": "repeat", "length": "4"}])
    assert excinfo.value.errors == [
        "rules[0].length: must be a whole number from 2 to 7"
    ]


def test_rules_must_be_a_list():
    assert validate_rules({"type": "repeat"}) == ["rules: must be a list of rules"]


# --- properties ----------------------------------------------------------------

subscriber = st.text(alphabet="0123456789", min_size=7, max_size=7)


@given(digits=subscriber, pattern=st.sampled_from(["AABB", "ABAB", "ABBA", "AABBCC"]))
def test_pattern_rule_agrees_with_a_naive_definition(digits, pattern):
    tail = digits[-len(pattern) :]
    naive = all(
        (tail[i] == tail[j]) == (pattern[i] == pattern[j])
        for i in range(len(pattern))
        for j in range(len(pattern))
    )
    rule_result = compile_rules([{"type": "pattern", "patterns": [pattern]}])(digits)
    assert (rule_result is not None) == naive
    assert matches_pattern(tail, pattern) == naive


@given(digits=subscriber, length=st.integers(3, 7))
def test_run_rule_agrees_with_a_naive_definition(digits, length):
    tail = [int(c) for c in digits[-length:]]
    steps = {b - a for a, b in itertools.pairwise(tail)}
    naive = steps in ({1}, {-1})
    assert (compile_rules([{"type": "run", "length": length}])(digits) is not None) == (
        naive
    )


@given(digits=subscriber)
def test_the_winning_grade_always_matches_on_its_own(digits):
    number = "400" + digits
    code, reason = grade_number(number, GRADES)
    if code is None:
        assert all(grade_number(number, [g]) == (None, "") for g in GRADES)
    else:
        spec = next(g for g in GRADES if g.code == code)
        assert grade_number(number, [spec]) == (code, reason)
        higher = [g for g in GRADES if g.priority > spec.priority]
        assert all(grade_number(number, [g])[0] is None for g in higher)
