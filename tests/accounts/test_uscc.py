"""统一社会信用代码 validation (GB 32100-2015 check digit)."""

import pytest
from django.core.exceptions import ValidationError
from hypothesis import given
from hypothesis import strategies as st

from accounts.validators import normalize_uscc, validate_uscc

VALID = "91110000600037341L"  # the example in GB 32100 documentation
ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"


def test_a_valid_code_passes():
    validate_uscc(VALID)


def test_a_wrong_check_digit_is_refused_with_its_own_message():
    wrong = VALID[:-1] + "M"

    with pytest.raises(ValidationError) as error:
        validate_uscc(wrong)

    assert error.value.code == "checksum"


@pytest.mark.parametrize("code", [VALID[:-1], VALID + "0", "12345"])
def test_a_wrong_length_is_refused_with_its_own_message(code):
    with pytest.raises(ValidationError) as error:
        validate_uscc(code)

    assert error.value.code == "length"


def test_letters_outside_the_alphabet_are_refused():
    with pytest.raises(ValidationError) as error:
        validate_uscc("9111000060003734IL")

    assert error.value.code in {"format", "checksum"}


def test_spaces_and_lower_case_are_normalised_before_validation():
    assert normalize_uscc(" 9111 0000 6000 37341l ") == VALID


def _check_digit(body: str) -> str:
    # GB 32100-2015 written out independently of python-stdnum.
    weights = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28]
    total = sum(ALPHABET.index(c) * w for c, w in zip(body, weights, strict=True))
    return ALPHABET[(31 - total % 31) % 31]


@given(
    body=st.text(alphabet="0123456789", min_size=8, max_size=8).flatmap(
        lambda region: st.text(alphabet=ALPHABET, min_size=9, max_size=9).map(
            lambda org: "91" + region[:6] + org
        )
    ),
    other=st.sampled_from(ALPHABET),
)
def test_exactly_one_check_digit_is_accepted_for_any_body(body, other):
    right = _check_digit(body)
    validate_uscc(body + right)
    if other != right:
        with pytest.raises(ValidationError):
            validate_uscc(body + other)
