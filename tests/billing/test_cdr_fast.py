"""The column-wise fast path gives exactly what CdrReader + RowValidator give."""

import codecs
import csv
import datetime as dt
import io
import re

import pytest
from django.db import connection
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing import cdr_fast
from billing.cdr_fast import COPY_COLUMNS, FastReader, FastUnavailable, fast_eligible
from billing.cdr_format import (
    CHUNK,
    FIELDS,
    CdrReader,
    NumberInfo,
    RowError,
    RowValidator,
    SubscriptionSpan,
    detect_encoding,
)


@pytest.fixture(autouse=True)
def _english():
    from django.utils import translation

    with translation.override("en"):
        yield


AGENT = 31
NUMBERS = {
    # agent 31 from 2026-03-01
    "4008100001": NumberInfo(1, (SubscriptionSpan(11, 21, 31, "2026-03-01", None),)),
    # agent 31 in 2025, agent 32 from 2026-03-10
    "4008100002": NumberInfo(
        2,
        (
            SubscriptionSpan(12, 22, 31, "2025-01-01", "2025-12-31"),
            SubscriptionSpan(13, 23, 32, "2026-03-10", None),
        ),
    ),
    # agent 31 throughout, another subscription from 2026-03-05
    "4008100003": NumberInfo(
        3,
        (
            SubscriptionSpan(14, 24, 31, "2024-01-01", "2026-03-04"),
            SubscriptionSpan(15, 25, 31, "2026-03-05", None),
        ),
    ),
    "4008200001": NumberInfo(4, (SubscriptionSpan(16, 26, 32, "2026-03-01", None),)),
    "4008300001": NumberInfo(5, ()),  # never subscribed
}

ENGLISH = [
    "call_id",
    "service_number",
    "caller_number",
    "caller_area",
    "answer_number",
    "start_time",
    "duration_seconds",
    "direction",
    "status",
]
CANONICAL = [
    "C-0001",
    "4008100001",
    "138****1234",
    "广东深圳",
    "",
    "2026-03-12 09:15:00",
    "61",
    "inbound",
    "answered",
]


def encode(text: str, encoding: str) -> bytes:
    if encoding == "utf-8-sig":
        return codecs.BOM_UTF8 + text.encode()
    if encoding == "utf-16-be":
        return codecs.BOM_UTF16_BE + text.encode("utf-16-be")
    return text.encode(encoding)  # "utf-16" writes its own BOM


def cdr_file(rows, *, header=ENGLISH, delimiter=",", newline="\n", encoding="utf-8"):
    lines = [delimiter.join(header), *(delimiter.join(r) for r in rows)]
    return encode(newline.join(lines) + newline, encoding)


def outcome(validator, fields):
    try:
        return ("accepted", validator.validate(fields))
    except RowError as exc:
        return ("rejected", exc.reason, fields)


def reference(data: bytes, agent_id=AGENT) -> dict:
    """line → outcome, the way the import reads a file row by row."""
    reader = CdrReader(io.BytesIO(data))
    validator = RowValidator(
        NUMBERS, agent_id=agent_id, columns=reader.columns, in_file_duplicates=False
    )
    result = {line: outcome(validator, fields) for line, fields in reader.rows()}
    reader.detach()
    return result


# Each field quoted or not empty: COPY reads an unquoted empty field as NULL.
NO_NULL = re.compile(r'(?:"(?:[^"]|"")*"|[^,"]+)(?:,(?:"(?:[^"]|"")*"|[^,"]+))*')


def copied_calls(copy_csv: bytes) -> dict:
    """line → ValidCall, as COPY (FORMAT csv) reads them."""
    text = copy_csv.decode()
    assert all(NO_NULL.fullmatch(r) for r in text.split("\n")[:-1])
    calls = {}
    for f in csv.reader(io.StringIO(text, newline=""), strict=True):
        assert len(f) == len(COPY_COLUMNS)
        ids, duration = (int(v) for v in f[2:5]), int(f[10])
        calls[int(f[0])] = (f[1], *ids, *f[5:10], duration, f[11], f[12])
    return calls


def fast(data: bytes, agent_id=AGENT, block_size=1 << 20) -> tuple[dict, set, int]:
    """line → outcome by FastReader, the lines it copied, the rows it counted."""
    stream = io.BytesIO(data)
    reader = CdrReader(stream)
    assert fast_eligible(stream, reader.encoding)
    validator = RowValidator(
        NUMBERS, agent_id=agent_id, columns=reader.columns, in_file_duplicates=False
    )
    fast_reader = FastReader(
        stream,
        encoding=reader.encoding,
        delimiter=reader.delimiter,
        header=reader.header,
        columns=reader.columns,
        validator=validator,
        block_size=block_size,
    )
    result, copied, rows = {}, set(), 0
    for batch in fast_reader.batches():
        calls = copied_calls(batch.copy_csv)
        assert len(calls) == batch.copied
        assert batch.rows == batch.copied + len(batch.others)
        rows += batch.rows
        copied |= calls.keys()
        result.update((line, ("accepted", call)) for line, call in calls.items())
        for line, fields in batch.others:
            assert line not in result
            result[line] = outcome(validator, fields)
    assert fast_reader.bytes_read == len(data)
    reader.detach()
    return result, copied, rows


# --- equivalence --------------------------------------------------------------

TRICKY = {
    "call_id": [
        " C-1 ",
        "4.008E+09",
        "1e5",
        "1.5e-3",
        "E5",
        "x" * 64,
        "x" * 65,
        "",
        "呼叫1",
        "Ａ1",
        "a b",
        "\u3000C-2",
        "C\x00",
        "C,1",
        "C\t1",
        "\x0bC\x0c",
        "C\u2028",
        "C\x1c",
        "C\x85",
        "C𠀀",
    ],
    "service_number": [
        "400-810-0001",
        " 4008100001 ",
        "400 810 0003",
        "４００８１００００１",
        "4.008E+09",
        "4008999999",
        "4008100002",
        "4008300001",
        "4008200001",
        "",
        " ",
        "abc",
        "400-810-0001\u3000",
        "40081000010",
        "400\u2013810\u20130001",
    ],
    "caller_number": [
        "13800138000",
        "+8613900139000",
        " 138 ",
        "138 0013 8000",
        "(010) 1234-5678",
        "1.38001E+10",
        "1" * 32,
        "1" * 33,
        "",
        "١٢٣",
        "#*",
        " ",
        "13800138000 ",
        "1380013800\u3000",
        "138,0013",
    ],
    "caller_area": [
        "",
        " 广东 ",
        "a" * 64,
        "a" * 65,
        "广" * 64 + " ",
        "\u3000",
        "x\x00y",
        "Beijing",
        "广东,深圳",
        "广东\t深圳",
        "𠀀𠀁" * 32,
        "𠀀" * 65,
    ],
    "start_time": [
        "2026-03-02 09:15:00",
        "2026-03-09 23:59:59",
        "2026-03-10 00:00:00",
        "2026-03-04 12:00:00",
        "2026-03-05 12:00:00",
        "2026-02-28 23:59:59",
        "2026-02-30 10:00:00",
        "2024-02-29 12:00:00",
        "2025-02-29 12:00:00",
        "2026-03-31 24:00:00",
        "2026-03-11 23:60:00",
        "2026-03-11 00:00:60",
        "2026-03-11T10:00:00",
        "2026-03-11 10:00:00+08:00",
        "2026-03-11 10:00:00Z",
        "2026-03-09 16:00:00+0000",
        "2026-02-28 23:00:00-01:00",
        " 2026-03-12 09:15:00 ",
        "2026/03/12 09:15",
        "0999-03-12 09:15:00",
        "0001-01-01 00:00:00",
        "２０２６-03-12 09:15:00",
        "",
        "2026-13-01 00:00:00",
        "2026-00-10 00:00:00",
        "2026-03-00 00:00:00",
        "2026-04-31 00:00:00",
        "2026-12-31 23:59:59",
        "2025-12-31 23:00:00",
        "2026-03-12 9:15:00",
    ],
    "duration_seconds": [
        "0",
        "007",
        "-5",
        "- 5",
        "12.5",
        "999999999",
        "1000000000",
        "2147483647",
        "2147483648",
        "99999999999",
        "١٢",
        "６１",
        " 61 ",
        "",
        "1e3",
        "+5",
    ],
    "direction": [
        "outbound",
        "Inbound",
        " INBOUND ",
        "呼入",
        "呼出",
        "in",
        "",
        "ｉｎｂｏｕｎｄ",
        "İnbound",
    ],
    "status": ["missed", "Answered", "接通", "未接", "busy", "", " missed "],
}
TRICKY["answer_number"] = TRICKY["caller_number"]

day_times = st.datetimes(
    min_value=dt.datetime(2026, 3, 10), max_value=dt.datetime(2026, 4, 30, 23, 59, 59)
)
CANONICAL_VALUES = {
    # No comma, no quote, not Excel (a letter first).
    "call_id": st.from_regex(r"C[!#-+\--~]{0,63}", fullmatch=True),
    "service_number": st.sampled_from(["4008100001", "4008100003"]),
    "caller_number": st.from_regex(
        r"[0-9+*#()\-](?:[0-9+*#() \-]{0,30}[0-9])?", fullmatch=True
    ),
    "caller_area": st.sampled_from(["", "广东深圳", "Beijing", "北京"]),
    "answer_number": st.sampled_from(["", "13900139000", "+8613900139000"]),
    "start_time": day_times.map(lambda t: t.strftime("%Y-%m-%d %H:%M:%S")),
    "duration_seconds": st.from_regex(r"0|[1-9][0-9]{0,8}", fullmatch=True),
    "direction": st.sampled_from(["inbound", "outbound"]),
    "status": st.sampled_from(["answered", "missed"]),
}
EXTRA = st.sampled_from(["", "备注", " x ", "1,2", "1\t2"])
PLAIN_EXTRA = st.sampled_from(["", "备注", " x "])


@st.composite
def cdr_files(draw):
    """A fast-eligible CDR file, and the lines of its canonical rows."""
    encoding = draw(
        st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "utf-16-be", "gb18030"])
    )
    delimiter = draw(st.sampled_from([",", "\t"]))
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    optional = draw(st.sets(st.sampled_from(["caller_area", "answer_number"])))
    fields = [f for f in ENGLISH if f not in {"caller_area", "answer_number"}]
    fields += sorted(optional)
    fields += [f"extra{i}" for i in range(draw(st.integers(0, 2)))]
    fields = draw(st.permutations(fields))
    header = [FIELDS[f][draw(st.integers(0, 1))] if f in FIELDS else f for f in fields]
    rows, canonical = [], set()
    for line in range(2, 2 + draw(st.integers(1, 40))):
        kind = draw(st.sampled_from(["canonical"] * 3 + ["mixed"] * 3 + ["shape"]))
        values = {}
        for f in fields:
            if f not in FIELDS:
                values[f] = draw(EXTRA if kind != "canonical" else PLAIN_EXTRA)
            elif kind == "canonical":
                values[f] = draw(CANONICAL_VALUES[f])
            else:
                values[f] = draw(
                    st.one_of(CANONICAL_VALUES[f], st.sampled_from(TRICKY[f]))
                )
        row = [values[f] for f in fields]
        if kind == "shape":
            shape = draw(st.sampled_from(["short", "long", "empty"]))
            if shape == "short":
                row = row[: draw(st.integers(2, len(row) - 1))]
            elif shape == "long":
                row += draw(st.lists(EXTRA, min_size=1, max_size=2))
            else:
                row = [""] * draw(st.integers(2, len(row) + 1))
        if kind == "canonical":
            canonical.add(line)
        rows.append(row)
    text = newline.join(delimiter.join(r) for r in [header, *rows])
    if draw(st.booleans()):
        text += newline
    return encode(text, encoding), canonical


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    cdr_files(),
    st.sampled_from([AGENT, None]),
    st.sampled_from([1024, 4096, 1 << 20]),
)
def test_the_fast_path_gives_the_reference_result_row_for_row(
    generated, agent_id, block_size
):
    data, canonical = generated
    expected = reference(data, agent_id)
    got, copied, rows = fast(data, agent_id, block_size)
    assert got == expected
    assert rows == len(expected)
    assert canonical <= copied


@pytest.mark.parametrize(
    "encoding", ["utf-8", "utf-8-sig", "utf-16", "utf-16-be", "gb18030"]
)
@pytest.mark.parametrize("delimiter", [",", "\t"])
@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_every_hand_written_tricky_value_gives_the_reference_result(
    encoding, delimiter, newline
):
    rows = [CANONICAL]
    for column, values in TRICKY.items():
        i = ENGLISH.index(column)
        rows += [[*CANONICAL[:i], v, *CANONICAL[i + 1 :]] for v in values]
    rows += [[""] * 9, [""] * 3, [*CANONICAL, "extra"], CANONICAL[:5], ["x"]]
    data = cdr_file(rows, delimiter=delimiter, newline=newline, encoding=encoding)
    expected = reference(data)
    got, copied, rows_read = fast(data, block_size=1024)
    assert got == expected
    assert rows_read == len(expected) == len(rows) - 2  # two all-empty rows
    accepted = [line for line, result in got.items() if result[0] == "accepted"]
    assert len(copied) > len(accepted) / 2


@pytest.mark.parametrize("agent_id", [AGENT, 32, None])
def test_each_day_gets_the_subscription_in_service_that_day(agent_id):
    """Subscriptions are found per (number, month) when one covers the whole
    month, else per day: every number, on the days around each span's edges,
    in months covered by one span, by two, by a part of one and by none."""
    days = [
        "2025-01-01", "2025-06-15", "2025-12-31", "2026-01-15", "2026-02-28",
        "2026-03-01", "2026-03-04", "2026-03-05", "2026-03-09", "2026-03-10",
        "2026-03-31", "2026-04-01", "2026-04-30",
    ]  # fmt: skip
    rows = []
    for number in NUMBERS:
        for day in days:
            start = f"{day} 12:00:00"
            rows.append(
                [f"C-{len(rows)}", number, *CANONICAL[2:5], start, *CANONICAL[6:]]
            )
    # Block by block in any order: a month is decided before its days.
    rows.reverse()
    data = cdr_file(rows)
    expected = reference(data, agent_id=agent_id)
    got, copied, _rows = fast(data, agent_id=agent_id, block_size=512)
    assert got == expected
    accepted = {line for line, result in expected.items() if result[0] == "accepted"}
    assert copied == accepted
    # March of 4008100003 has two spans: each of its days is asked alone.
    subscriptions = {expected[line][1][2] for line in accepted}
    assert {14, 15} <= subscriptions or agent_id == 32


def test_chinese_headers_in_another_order_with_extra_columns():
    order = [8, 7, 6, 5, 4, 3, 2, 1, 0]
    header = ["备注", *(FIELDS[ENGLISH[i]][1] for i in order), "通话时长"]
    rows = []
    for n in range(200):
        values = [*CANONICAL]
        values[0] = f"C-{n:04}"
        values[7:9] = ["呼入", "接通"] if n % 2 else ["outbound", "missed"]
        rows.append(["x", *(values[i] for i in order), str(n)])
    data = cdr_file(rows, header=header, encoding="gb18030")
    expected = reference(data)
    got, copied, _rows = fast(data)
    assert got == expected
    assert len(copied) == 200  # 呼入/接通 too, by the validator's own table


def test_a_realistic_file_is_copied_whole():
    rows = []
    for n in range(5000):
        start = dt.datetime(2026, 3, 10) + dt.timedelta(seconds=577 * n)
        rows.append(
            [
                f"CT{n:012}",
                ["4008100001", "4008100003"][n % 2],
                f"13{n % 10}****{n % 9973:04}",
                ["广东深圳", "", "北京"][n % 3],
                ["", f"+86139{n:08}"][n % 2],
                start.strftime("%Y-%m-%d %H:%M:%S"),
                str(n % 600),
                ["inbound", "outbound"][n % 7 == 0],
                ["answered", "missed"][n % 5 == 0],
            ]
        )
    data = cdr_file(rows, newline="\r\n")
    expected = reference(data)
    got, copied, rows_read = fast(data, block_size=16 << 10)
    assert got == expected
    assert len(copied) == rows_read == 5000


def test_rows_with_another_number_of_fields_keep_their_lines_and_fields():
    rows = [CANONICAL, CANONICAL[:3], [*CANONICAL, "x", "y"], CANONICAL, ["", ""]]
    rows += [["a"], CANONICAL]
    data = cdr_file(rows)
    got, copied, rows_read = fast(data)
    assert got == reference(data)
    assert copied == {2, 5, 8}
    assert got[3] == ("rejected", "Missing value in column “start_time”.", rows[1])
    assert got[4][0] == "accepted"
    assert 6 not in got and rows_read == 6


def test_forgetting_the_values_looked_up_changes_nothing(monkeypatch):
    monkeypatch.setattr(cdr_fast, "_LOOKUP_LIMIT", 1)
    rows = []
    for n in range(300):
        values = [*CANONICAL]
        values[0] = f"C-{n:04}"
        values[1] = ["4008100001", "400-810-0003", "4008100002", "4008100003"][n % 4]
        values[3] = ["广东深圳", "", " 北京 ", "x" * 65][n % 4]
        values[5] = f"2026-03-{1 + n % 31:02} 10:00:00"
        values[7] = ["inbound", "呼出", "Outbound", "out"][n % 7 % 4]
        rows.append(values)
    data = cdr_file(rows)
    expected = reference(data)
    got, copied, _rows = fast(data, block_size=1024)
    assert got == expected
    assert len(copied) > 50


# --- falling back -----------------------------------------------------------------


def reader_for(data: bytes, **kw) -> FastReader:
    stream = io.BytesIO(data)
    reader = CdrReader(stream)
    reader.detach()  # or the stream closes with the reader's text wrapper
    validator = RowValidator(
        NUMBERS, agent_id=AGENT, columns=reader.columns, in_file_duplicates=False
    )
    return FastReader(
        stream,
        encoding=reader.encoding,
        delimiter=reader.delimiter,
        header=kw.get("header", reader.header),
        columns=reader.columns,
        validator=validator,
        block_size=kw.get("block_size", 1 << 20),
    )


def test_a_field_longer_than_the_csv_limit_is_left_to_the_csv_reader():
    data = cdr_file([CANONICAL, [*CANONICAL[:3], "广" * 100, *CANONICAL[4:]]])
    limit = csv.field_size_limit(99)
    try:
        with pytest.raises(FastUnavailable):
            list(reader_for(data).batches())
    finally:
        csv.field_size_limit(limit)


def test_a_byte_order_mark_starting_later_rows_is_kept_as_csv_keeps_it():
    rows = [CANONICAL] + [[f"\ufeffC-{n}", *CANONICAL[1:]] for n in range(100)]
    data = cdr_file(rows)
    expected = reference(data)
    got, _copied, _rows = fast(data, block_size=1024)
    assert got == expected
    assert expected[3][1][0] == "\ufeffC-0"


def test_a_row_longer_than_a_block_is_left_to_the_csv_reader():
    data = cdr_file([CANONICAL, [*CANONICAL[:3], "广" * 1000, *CANONICAL[4:]]])
    with pytest.raises(FastUnavailable):
        list(reader_for(data, block_size=1024).batches())


def test_a_first_row_starting_with_a_byte_order_mark_is_left_to_the_csv_reader():
    data = cdr_file([["\ufeffC-1", *CANONICAL[1:]]])
    with pytest.raises(FastUnavailable):
        list(reader_for(data).batches())


def test_a_header_other_than_the_one_given_is_refused():
    data = cdr_file([CANONICAL])
    with pytest.raises(FastUnavailable):
        list(reader_for(data, header=[*ENGLISH, "x"]).batches())


def test_the_validator_must_leave_duplicates_to_the_database():
    data = cdr_file([CANONICAL])
    reader = CdrReader(io.BytesIO(data))
    with pytest.raises(ValueError):
        FastReader(
            reader.stream,
            encoding=reader.encoding,
            delimiter=reader.delimiter,
            header=reader.header,
            columns=reader.columns,
            validator=RowValidator(NUMBERS, agent_id=AGENT, columns=reader.columns),
        )


def test_a_file_of_only_a_header_has_no_batches():
    assert list(reader_for(cdr_file([]).rstrip(b"\n")).batches()) == []
    assert list(reader_for(cdr_file([])).batches()) == []


# --- eligibility --------------------------------------------------------------


def eligible(data: bytes, encoding: str = "utf-8") -> bool:
    stream = io.BytesIO(data)
    stream.seek(5)
    answer = fast_eligible(stream, encoding)
    assert stream.tell() == 0
    # The encoding check, watching the file, tells the same.
    watch = cdr_fast.PlainLines()
    found = detect_encoding(stream, watch)
    assert watch.fed == (found != "utf-16")
    assert not watch.fed or watch.result() == answer
    return answer


@pytest.mark.parametrize(
    "data",
    [
        b"a,b\n1,2\n",
        b"a,b\r\n1,2\r\n",
        b"a,b\n1,2",
        b"a,b\r\n1,2\n3,4\r\n",
        b"a,b\n,\n",
        "呼叫ID,b\n广东,2\n".encode(),
        b"a,b\n" + b"x" * (CHUNK - 5) + b"\r\n2\n",  # CR LF across chunks
        b"a,b\n" + b"x" * (CHUNK - 4) + b"\n2\n",
        b"a,b\n" + b"x" * (CHUNK * 2) + b"\r\n2\r\n",  # a line over chunks
        b"x" * (CHUNK - 1) + b"\r\n2\r\n",
        b"a,b",
    ],
)
def test_files_without_quotes_blank_lines_or_lone_crs_are_eligible(data):
    assert eligible(data)


@pytest.mark.parametrize(
    "data",
    [
        b'a,b\n1,"2"\n',
        b'"a",b\n1,2\n',
        b"a,b\n\n1,2\n",
        b"a,b\r\n\r\n1,2\r\n",
        b"a,b\n\r\n1,2\n",
        b"a,b\n1,2\n\n",
        b"a,b\r\n1,2\r\n\r\n",
        b"\na,b\n1,2\n",
        b"\r\na,b\n1,2\n",
        b"a,b\r1,2\n",
        b"a,b\n1,2\r",
        b"a,b\n1\r2\n",
        b"a,b\n" + b"x" * (CHUNK - 5) + b"\n\n2\n",  # blank line across chunks
        b"a,b\n" + b"x" * (CHUNK - 5) + b"\r2\n",  # lone CR at a chunk's end
        b"a,b\n" + b"x" * (CHUNK - 4) + b'"2\n',
        b"a,b\n" + b"x" * (CHUNK - 6) + b"\n\r\n2\n",
        b"a,b\n" + b"x" * (CHUNK * 2) + b"\rx\n2\n",
        b"x" * (CHUNK - 1) + b"\r2\n",
        b"a,b\r",
    ],
)
def test_quotes_blank_lines_and_lone_crs_are_not_eligible(data):
    assert not eligible(data)


def test_eligibility_reads_utf16_and_gb18030_as_text():
    assert eligible("a\tb\r\n广\t2\r\n".encode("utf-16"), "utf-16")
    assert not eligible("a\tb\r\n\r\n广\t2\r\n".encode("utf-16"), "utf-16")
    assert not eligible('a\tb\r\n"广"\t2\r\n'.encode("utf-16"), "utf-16")
    assert eligible(codecs.BOM_UTF8 + b"a,b\n1,2\n", "utf-8-sig")
    assert not eligible(codecs.BOM_UTF8 + b"\na,b\n1,2\n", "utf-8-sig")
    assert eligible("呼叫ID,b\n广东深圳,呼入\n".encode("gb18030"), "gb18030")


# --- PostgreSQL ---------------------------------------------------------------


@pytest.mark.django_db
def test_copy_csv_loads_into_the_staging_table_as_the_validator_returned():
    rows = [CANONICAL, *([f"C-{i}", *CANONICAL[1:]] for i in range(3))]
    rows[2][3] = ""  # an empty area stays an empty string
    rows[3][4] = "+8613900139000"
    rows.append(["C,2", *CANONICAL[1:]])  # a tab file: a comma in an id
    data = cdr_file(rows, delimiter="\t")
    expected = reference(data)
    got, copied, _rows = fast(data)
    assert got == expected and copied == {2, 3, 4, 5, 6}
    batch = next(reader_for(data).batches())
    columns = ", ".join(COPY_COLUMNS)
    with connection.cursor() as cur:
        cur.execute(
            "CREATE TEMP TABLE fast_stage (line integer, call_id varchar(64),"
            " number_id bigint, subscription_id bigint, company_id bigint,"
            " caller_number varchar(32), caller_area varchar(64),"
            " answer_number varchar(32), start_local timestamp, period date,"
            " duration_seconds integer, direction varchar(8), status varchar(8))"
        )
        with cur.copy(f"COPY fast_stage ({columns}) FROM STDIN (FORMAT csv)") as copy:
            copy.write(batch.copy_csv)
        cur.execute(f"SELECT {columns} FROM fast_stage ORDER BY line")  # noqa: S608
        stored = cur.fetchall()
    assert [r[0] for r in stored] == [2, 3, 4, 5, 6]
    for line, *values in stored:
        call = expected[line][1]
        start = dt.datetime.fromisoformat(call[7])
        period = dt.date.fromisoformat(call[8])
        assert tuple(values) == (*call[:7], start, period, *call[9:])
    assert stored[2][6] == "" and stored[0][7] == ""  # empty, not NULL
    assert stored[4][1] == "C,2"
