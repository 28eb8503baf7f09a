"""``billing.pg_copy``: Arrow columns written in PostgreSQL's binary COPY
format read back as the values they were, through a real server."""

import datetime as dt
from decimal import Decimal

import psycopg
import pyarrow as pa
import pytest
from django.db import connection

from billing.pg_copy import SIGNATURE, TRAILER, BinaryCopy, Field

pytestmark = pytest.mark.django_db

UTC = dt.UTC
FIELDS = [
    Field("big", "int8"),
    Field("small", "int4"),
    Field("at", "timestamptz"),
    Field("rate", "numeric", digits=1),
    Field("amount", "numeric", digits=4),
    Field("name", "text"),
    Field("note", "text"),
]
TABLE = (
    "CREATE TEMP TABLE copied (big bigint, small integer, at timestamptz,"
    " rate numeric(8, 4), amount numeric(14, 4), name varchar(64), note text)"
)
DECIMAL = pa.decimal128(28, 4)


def _copy(copy: BinaryCopy, *blocks: dict[str, pa.Array]) -> list[tuple]:
    with connection.cursor() as cur:
        cur.execute(TABLE)
        with cur.cursor.copy(
            f"COPY copied ({copy.columns}) FROM STDIN (FORMAT binary)"
        ) as out:
            out.write(SIGNATURE)
            for block in blocks:
                out.write(copy.encode(block))
            out.write(TRAILER)
        cur.execute(f"SELECT {copy.columns} FROM copied")  # noqa: S608
        return cur.fetchall()


def _micros(moment: dt.datetime) -> int:
    return (moment - dt.datetime(1970, 1, 1, tzinfo=UTC)) // dt.timedelta(
        microseconds=1
    )


def _block(rows: list[tuple]) -> dict[str, pa.Array]:
    big, small, at, rate, amount, name, note = zip(*rows, strict=True)
    return {
        "big": pa.array(big, pa.int64()),
        "small": pa.array(small, pa.int64()),
        "at": pa.array([_micros(t) for t in at], pa.int64()),
        "rate": pa.array(rate, pa.decimal128(8, 4)),
        "amount": pa.array(amount, DECIMAL),
        "name": pa.array(name, pa.string()),
        "note": pa.array(note, pa.string()),
    }


ROWS = [
    (
        0,
        0,
        dt.datetime(2000, 1, 1, tzinfo=UTC),
        Decimal("0.0000"),
        Decimal("0.0000"),
        "",
        "",
    ),
    (
        2**63 - 1,
        2**31 - 1,
        dt.datetime(2026, 4, 30, 16, 0, 11, tzinfo=UTC),
        Decimal("9999.9999"),
        Decimal("9999999999.9999"),
        "CT202605010000000001",
        "广东深圳",
    ),
    (
        -(2**63),
        -(2**31),
        dt.datetime(1991, 12, 31, 16, 0, 0, 1, tzinfo=UTC),
        Decimal("0.0001"),
        Decimal("10000.0000"),
        "x" * 64,
        'emoji 📞, tab\t, newline\n, backslash \\, quote ", NUL-free',
    ),
    (
        400,
        59,
        dt.datetime(2038, 1, 19, 3, 14, 8, tzinfo=UTC),
        Decimal("0.1200"),
        Decimal("123456.7890"),
        "a,b;c",
        "x" * 100_000,
    ),
]


def test_values_come_back_as_they_were():
    copied = _copy(BinaryCopy(FIELDS), _block(ROWS[:2]), _block(ROWS[2:]))
    assert sorted(copied) == sorted(ROWS)


def test_numerics_keep_their_scale():
    """Leading and trailing zero digits are written; PostgreSQL stores the
    value with the column's scale, as it would from text."""
    copied = _copy(BinaryCopy(FIELDS), _block(ROWS))
    assert {str(row[3]) for row in copied} == {
        "0.0000",
        "9999.9999",
        "0.0001",
        "0.1200",
    }
    assert "10000.0000" in {str(row[4]) for row in copied}


def test_a_value_too_large_for_the_column_fails_as_text_would():
    row = (*ROWS[0][:4], Decimal("10000000000.0000"), *ROWS[0][5:])
    with pytest.raises(psycopg.errors.NumericValueOutOfRange):
        _copy(BinaryCopy(FIELDS), _block([row]))


def test_a_text_too_long_for_the_column_fails_as_text_would():
    row = (*ROWS[0][:5], "x" * 65, "")
    with pytest.raises(psycopg.errors.StringDataRightTruncation):
        _copy(BinaryCopy(FIELDS), _block([row]))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("rate", Decimal("-0.0001")),  # below zero
        ("rate", Decimal("100000000")),  # more digits than the field has
        ("amount", Decimal("-1")),
    ],
)
def test_numerics_out_of_range_are_refused(field, value):
    block = _block(ROWS[:1])
    block[field] = pa.array([value], DECIMAL)
    with pytest.raises(ValueError, match=field):
        BinaryCopy(FIELDS).encode(block)


@pytest.mark.parametrize("value", [2**31, -(2**31) - 1])
def test_an_int4_out_of_range_is_refused_not_wrapped(value):
    block = {**_block(ROWS[:1]), "small": pa.array([value], pa.int64())}
    with pytest.raises(ValueError, match="small"):
        BinaryCopy(FIELDS).encode(block)


def test_nulls_and_other_scales_are_refused():
    block = _block(ROWS[:1])
    with pytest.raises(ValueError, match="nulls"):
        BinaryCopy(FIELDS).encode({**block, "small": pa.array([None], pa.int64())})
    with pytest.raises(ValueError, match="nulls"):
        BinaryCopy(FIELDS).encode({**block, "name": pa.array([None], pa.string())})
    with pytest.raises(ValueError, match="scale 4"):
        BinaryCopy(FIELDS).encode(
            {**block, "rate": pa.array([Decimal("1.00")], pa.decimal128(8, 2))}
        )


def test_sliced_arrays_are_read_from_their_offset():
    block = {name: array.slice(1, 2) for name, array in _block(ROWS).items()}
    assert sorted(_copy(BinaryCopy(FIELDS), block)) == sorted(ROWS[1:3])


def test_an_empty_block_is_no_rows():
    block = {name: array.slice(0, 0) for name, array in _block(ROWS).items()}
    assert _copy(BinaryCopy(FIELDS), block) == []


def test_fixed_fields_come_first_then_texts_then_choices():
    with pytest.raises(ValueError, match="come first"):
        BinaryCopy([Field("name", "text"), Field("big", "int8")])
    with pytest.raises(ValueError, match="come first"):
        BinaryCopy([Field("c", "choice", choices=("a",)), Field("name", "text")])
    with pytest.raises(ValueError, match="unknown"):
        BinaryCopy([Field("big", "float8")])
    with pytest.raises(ValueError, match="needs its choices"):
        BinaryCopy([Field("c", "choice")])


CHOICES = [
    Field("small", "int4"),
    Field("name", "text"),
    Field("note", "choice", choices=("peak", "offpeak")),
    Field("name2", "choice", choices=("", "呼入", "outbound")),
]


def test_choices_are_written_as_the_texts_they_stand_for():
    copy = BinaryCopy(CHOICES)
    block = {
        "small": pa.array(range(6), pa.int64()),
        "name": pa.array(["a", "", "bc", "广东", "d", "e"]),
        "note": pa.array([0, 1, 0, 1, 0, 1], pa.int8()),
        "name2": pa.array([0, 1, 2, 2, 1, 0], pa.int8()),
    }
    with connection.cursor() as cur:
        cur.execute(
            "CREATE TEMP TABLE copied (small integer, name text, note text,"
            " name2 varchar(8))"
        )
        with cur.cursor.copy(
            f"COPY copied ({copy.columns}) FROM STDIN (FORMAT binary)"
        ) as out:
            out.write(SIGNATURE)
            out.write(copy.encode(block))
            out.write(TRAILER)
        cur.execute("SELECT small, name, note, name2 FROM copied ORDER BY small")
        assert cur.fetchall() == [
            (0, "a", "peak", ""),
            (1, "", "offpeak", "呼入"),
            (2, "bc", "peak", "outbound"),
            (3, "广东", "offpeak", "outbound"),
            (4, "d", "peak", "呼入"),
            (5, "e", "offpeak", ""),
        ]


def test_a_choice_out_of_range_is_refused():
    block = {
        "small": pa.array([1], pa.int64()),
        "name": pa.array(["a"]),
        "note": pa.array([2], pa.int8()),
        "name2": pa.array([0], pa.int8()),
    }
    with pytest.raises(ValueError, match="note"):
        BinaryCopy(CHOICES).encode(block)
