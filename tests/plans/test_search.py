"""The number search: pattern translation, digit tokens, each filter, sorting,
paging, and the page in both languages."""

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone
from hypothesis import given
from hypothesis import strategies as st

from plans.models import Hold, PhoneNumber
from plans.search import (
    InvalidSearch,
    clean_digits,
    digit_tokens,
    matches,
    pattern_to_like,
)
from plans.selectors import (
    COUNT_CAP,
    ORDINARY,
    SearchCriteria,
    number_search,
)
from tests.factories import (
    CompanyFactory,
    UserFactory,
    VanityGradeFactory,
    stock_number,
)

subscriber = st.text(alphabet="0123456789", min_size=7, max_size=7)


# --- pure: patterns -----------------------------------------------------------
@pytest.mark.parametrize(
    ("typed", "like", "whole"),
    [
        ("400*8*8888", "400_8_8888", True),
        ("400-*8*-8888", "400_8_8888", True),
        ("４００＊８＊８８８８", "400_8_8888", True),
        ("400?8x8888", "400_8_8888", True),
        ("8*8*8", "%8_8_8%", False),
        ("520", "%520%", False),
        ("*********8", "_________8", True),
    ],
)
def test_pattern_is_translated_to_like(typed, like, whole):
    result = pattern_to_like(typed)

    assert (result.like, result.whole) == (like, whole)


@pytest.mark.parametrize(
    "typed",
    ["", "   ", "400*8*88889", "400a8b8888", "****", "500*8*8888", "4*1*******"],
)
def test_unusable_patterns_are_refused_with_a_reason(typed):
    with pytest.raises(InvalidSearch) as exc:
        pattern_to_like(typed)

    assert exc.value.message


def test_digits_fields_refuse_letters_and_long_input():
    assert clean_digits("88-88", max_length=10, label="Ends with") == "8888"
    with pytest.raises(InvalidSearch):
        clean_digits("88a", max_length=10, label="Ends with")
    with pytest.raises(InvalidSearch):
        clean_digits("12345678901", max_length=10, label="Contains")


@given(tail=subscriber, mask=st.lists(st.booleans(), min_size=10, max_size=10))
def test_a_number_matches_any_pattern_made_by_hiding_its_digits(tail, mask):
    number = "400" + tail
    pattern = "".join("*" if hide else d for d, hide in zip(number, mask, strict=True))
    if pattern.strip("*") == "":
        return  # refused: a pattern needs a digit

    like = pattern_to_like(pattern)

    assert matches(number, like.like)


@given(
    tail=subscriber,
    pattern=st.text(alphabet="0123456789*", min_size=1, max_size=10),
)
def test_digit_tokens_never_hide_a_matching_number(tail, pattern):
    """The token index may only narrow: every LIKE match holds one token set."""
    number = "400" + tail
    try:
        like = pattern_to_like(pattern)
    except InvalidSearch:
        return
    if not matches(number, like.like) or like.token_sets is None:
        return

    tokens = set(digit_tokens(number))

    assert any(set(s) <= tokens for s in like.token_sets)


@given(tail=subscriber, other=subscriber)
def test_whole_pattern_tokens_are_exact(tail, other):
    """For a pattern of all 10 digits, holding its tokens means being it."""
    like = pattern_to_like("400" + tail)
    (tokens,) = like.token_sets

    assert (set(tokens) <= set(digit_tokens("400" + other))) == (tail == other)


# --- database: the SQL function agrees with Python ---------------------------
@pytest.mark.django_db
@pytest.mark.parametrize("number", ["4000000000", "4008108888", "4001234567"])
def test_sql_digit_tokens_match_python(number):
    with connection.cursor() as cursor:
        cursor.execute("SELECT plans_digit_tokens(%s)", [number])
        (sql_tokens,) = cursor.fetchone()

    assert sorted(sql_tokens) == sorted(digit_tokens(number))


# --- selector: filters --------------------------------------------------------
@pytest.fixture
def stock(db):
    gold = VanityGradeFactory(
        code="gold", selection_fee=Decimal("2000.00"), min_monthly=Decimal("299")
    )
    lucky = VanityGradeFactory(code="lucky", selection_fee=Decimal("300.00"))
    numbers = {
        "4008108888": gold,
        "4001238888": gold,
        "4006660168": lucky,
        "4008135201": None,
        "4008145208": None,
        "4007777777": None,
    }
    made = {n: stock_number(n, grade=g) for n, g in numbers.items()}
    made["4001238888"].carrier = "mobile"
    made["4001238888"].save(update_fields=["carrier"])
    made["4007777777"].status = PhoneNumber.Status.SUBSCRIBED
    made["4007777777"].save(update_fields=["status"])
    return made


def found(criteria: SearchCriteria) -> list[str]:
    return [n.number for n in number_search(criteria=criteria).numbers]


def test_whole_pattern_finds_numbers_with_those_digits_in_those_places(stock):
    assert found(SearchCriteria(pattern=pattern_to_like("400*1*8888"))) == [
        "4008108888"
    ]


def test_short_pattern_matches_anywhere(stock):
    assert found(SearchCriteria(pattern=pattern_to_like("1*520"))) == [
        "4008135201",
        "4008145208",
    ]


def test_contains_and_ends_with(stock):
    assert found(SearchCriteria(contains="0168")) == ["4006660168"]
    assert found(SearchCriteria(ends_with="8888")) == ["4001238888", "4008108888"]


def test_grade_filter_and_ordinary(stock):
    assert found(SearchCriteria(grade="lucky")) == ["4006660168"]
    assert found(SearchCriteria(grade=ORDINARY)) == ["4008135201", "4008145208"]
    assert found(SearchCriteria(grade="no-such-grade")) == []


def test_carrier_no_four_and_maximum_fee(stock):
    assert found(SearchCriteria(carrier="mobile")) == ["4001238888"]
    assert "4008145208" not in found(SearchCriteria(no_four=True))
    assert "4008135201" in found(SearchCriteria(no_four=True))
    assert found(SearchCriteria(max_fee=Decimal("300"))) == [
        "4006660168",
        "4008135201",
        "4008145208",
    ]


def test_only_numbers_in_stock_are_found(stock):
    assert "4007777777" not in found(SearchCriteria())
    assert found(SearchCriteria(pattern=pattern_to_like("4007777777"))) == []


def test_sort_by_fee_both_ways(stock):
    assert found(SearchCriteria(sort="fee")) == [
        "4008135201",
        "4008145208",
        "4006660168",
        "4001238888",
        "4008108888",
    ]
    assert found(SearchCriteria(sort="-fee"))[:3] == [
        "4001238888",
        "4008108888",
        "4006660168",
    ]


def test_pages_and_capped_count(db):
    for i in range(7):
        stock_number(f"40081000{i:02d}")

    first = number_search(criteria=SearchCriteria(), page=1, per_page=3)
    last = number_search(criteria=SearchCriteria(), page=3, per_page=3)

    assert [n.number for n in first.numbers] == [
        "4008100000",
        "4008100001",
        "4008100002",
    ]
    assert first.has_next and not first.has_previous
    assert (first.total, first.pages) == (7, 3)
    assert [n.number for n in last.numbers] == ["4008100006"]
    assert not last.has_next
    assert not first.total_capped and COUNT_CAP >= 7


# --- the page ----------------------------------------------------------------
@pytest.fixture
def member(db):
    return UserFactory(company=CompanyFactory(), role="member")


@pytest.mark.parametrize(
    ("language", "heading"), [("zh-hans", "选号"), ("en", "Choose a number")]
)
def test_search_page_renders_results_in_both_languages(
    client, stock, owner, language, heading
):
    client.force_login(owner)
    client.cookies["hotline400_language"] = language

    response = client.get(reverse("plans:search"), {"ends_with": "8888"})

    body = response.content.decode()
    assert response.status_code == 200
    assert heading in body
    assert "400-810-8888" in body
    assert "400-666-0168" not in body


def test_bad_pattern_shows_the_reason_not_an_error_page(client, stock, owner):
    client.force_login(owner)
    client.cookies["hotline400_language"] = "en"

    response = client.get(reverse("plans:search"), {"pattern": "500*8*8888"})

    assert response.status_code == 200
    assert "must too" in response.content.decode()


def test_members_see_results_without_hold_buttons(client, stock, member):
    client.force_login(member)

    response = client.get(reverse("plans:search"))

    assert response.status_code == 200
    assert reverse("plans:hold") not in response.content.decode()


def test_expired_holds_and_rested_numbers_are_back_in_search(client, stock, owner):
    held = stock["4008135201"]
    held.status = PhoneNumber.Status.HELD
    held.save(update_fields=["status"])
    Hold.objects.create(
        number=held,
        company=CompanyFactory(),
        expires_at=timezone.now() - dt.timedelta(minutes=1),
    )
    rested = stock["4008145208"]
    rested.status = PhoneNumber.Status.QUARANTINE
    rested.quarantine_until = timezone.localdate()
    rested.save(update_fields=["status", "quarantine_until"])
    client.force_login(owner)

    response = client.get(reverse("plans:search"), {"contains": "520"})

    body = response.content.decode()
    assert "400-813-5201" in body
    assert "400-814-5208" in body


def test_the_count_stops_at_the_cap_and_the_page_says_more_than(client, owner):
    PhoneNumber.objects.bulk_create(
        PhoneNumber(
            number=f"4008{i:06d}", carrier="telecom", has_four="4" in f"8{i:06d}"
        )
        for i in range(COUNT_CAP + 5)
    )
    client.force_login(owner)
    client.cookies["hotline400_language"] = "en"

    result = number_search(criteria=SearchCriteria())
    body = client.get(reverse("plans:search")).content.decode()

    assert result.total_capped and result.has_next
    assert result.total == COUNT_CAP + 1
    assert f"More than {COUNT_CAP} numbers match" in body


@pytest.mark.django_db
def test_contains_results_are_in_number_order_whatever_the_plan(stock):
    assert found(SearchCriteria(contains="888", sort="-fee")) == [
        "4001238888",
        "4008108888",
    ]
    assert found(SearchCriteria(contains="888")) == ["4001238888", "4008108888"]
