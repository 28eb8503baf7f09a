"""Canonical 400 numbers: accepted formats, refused input, carriers by block."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from plans.numbers import (
    CarrierLookup,
    InvalidNumber,
    canonicalize_400,
    carrier_for,
    format_400,
)

BLOCKS = {
    "4000": "unicom",
    "4006": "unicom",
    "4001": "mobile",
    "4007": "mobile",
    "4008": "telecom",
    "4009": "telecom",
}


@pytest.mark.parametrize(
    "text",
    [
        "4008108888",
        "400-810-8888",
        "400 810 8888",
        "  400-810-8888\n",
        "400-8108-888",
        "４００－８１０－８８８８",  # full-width digits and hyphen
        "400\u3000810\u30008888",  # ideographic spaces
        "400\u2013810\u20138888",  # en dashes from a word processor
    ],
)
def test_accepted_formats_give_the_canonical_digits(text):
    assert canonicalize_400(text) == "4008108888"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "4.008E+09",  # Excel scientific notation: digits are lost
        "4.008108888E+09",
        "4008108888.0",  # Excel float export
        "400810888",  # 9 digits
        "40081088881",  # 11 digits
        "8008108888",  # not a 400 number
        "400-810-888a",
        "400--810-8888",  # doubled separator
        "-4008108888",
        "400.810.8888",
        "+86 400 810 8888",
        "400_810_8888",
        "٤٠٠٨١٠٨٨٨٨",  # Arabic-Indic digits are not accepted as digits
    ],
)
def test_malformed_input_is_refused_with_a_message(text):
    with pytest.raises(InvalidNumber) as excinfo:
        canonicalize_400(text)
    assert str(excinfo.value)
    assert isinstance(excinfo.value, ValueError)


def test_non_text_is_refused():
    with pytest.raises(InvalidNumber):
        canonicalize_400(4008108888)


def test_message_names_the_offending_value():
    with pytest.raises(InvalidNumber, match=r"4\.008E\+09"):
        canonicalize_400("4.008E+09")


def test_format_shows_groups_of_3_3_4():
    assert format_400("4008108888") == "400-810-8888"
    assert format_400(" 400 810 8888 ") == "400-810-8888"


def test_format_refuses_invalid_numbers():
    with pytest.raises(InvalidNumber):
        format_400("12345")


@pytest.mark.parametrize(
    ("number", "carrier"),
    [
        ("4000123456", "unicom"),
        ("4006123456", "unicom"),
        ("4001123456", "mobile"),
        ("4007123456", "mobile"),
        ("4008123456", "telecom"),
        ("4009123456", "telecom"),
        ("4002123456", None),
    ],
)
def test_carrier_follows_the_block(number, carrier):
    assert carrier_for(number, BLOCKS) == carrier
    assert CarrierLookup(BLOCKS)(number) == carrier


def test_longest_prefix_wins():
    blocks = {**BLOCKS, "40081": "mobile", "400812": "unicom"}
    assert carrier_for("4008123456", blocks) == "unicom"
    assert carrier_for("4008134567", blocks) == "mobile"
    assert carrier_for("4008234567", blocks) == "telecom"


digits7 = st.text(alphabet="0123456789", min_size=7, max_size=7)


@given(tail=digits7, sep=st.sampled_from(["", " ", "-"]))
def test_any_separator_style_round_trips(tail, sep):
    canonical = "400" + tail
    text = f"{canonical[:3]}{sep}{canonical[3:6]}{sep}{canonical[6:]}"
    assert canonicalize_400(text) == canonical
    assert canonicalize_400(format_400(text)) == canonical


@given(
    blocks=st.dictionaries(
        st.text(alphabet="0123456789", min_size=1, max_size=6).map("400".__add__),
        st.sampled_from(["unicom", "mobile", "telecom"]),
        max_size=8,
    ),
    tail=digits7,
)
def test_fast_lookup_agrees_with_carrier_for(blocks, tail):
    number = "400" + tail
    assert CarrierLookup(blocks)(number) == carrier_for(number, blocks)
