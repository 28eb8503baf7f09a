"""The CDR file format, pure: encodings, headers, separators, row validation."""

import io

import pytest
from hypothesis import given
from hypothesis import strategies as st

from billing.cdr_format import (
    FIELD_ORDER,
    CdrFileError,
    CdrReader,
    NumberInfo,
    RowError,
    RowValidator,
    SubscriptionSpan,
    detect_encoding,
    header_columns,
    parse_start,
    sniff_delimiter,
)
from tests.billing.cdr_fixtures import FILES


@pytest.fixture(autouse=True)
def _english():
    from django.utils import translation

    with translation.override("en"):
        yield


ENCODINGS = {
    "utf8.csv": ("utf-8", ","),
    "utf8_bom.csv": ("utf-8-sig", ","),
    "utf16le_bom.txt": ("utf-16", "\t"),
    "gbk.csv": ("gb18030", ","),
    "tab.tsv": ("utf-8", "\t"),
    "crlf.csv": ("utf-8", ","),
    "chinese_headers.csv": ("utf-8", ","),
}

NUMBERS = {
    "4008100001": NumberInfo(1, (SubscriptionSpan(11, 21, 31, "2026-03-01", None),)),
    "4008100002": NumberInfo(
        2,
        (
            SubscriptionSpan(12, 22, 31, "2025-01-01", "2025-12-31"),
            SubscriptionSpan(13, 23, 32, "2026-03-10", None),
        ),
    ),
    "4008300001": NumberInfo(3, ()),
}


def row(**kw):
    values = {
        "call_id": "C-1",
        "service_number": "400-810-0001",
        "caller_number": "138****1234",
        "caller_area": "广东深圳",
        "answer_number": "",
        "start_time": "2026-03-02 09:15:00",
        "duration_seconds": "61",
        "direction": "呼入",
        "status": "接通",
    }
    values.update(kw)
    return [values[f] for f in FIELD_ORDER]


@pytest.mark.parametrize("name", sorted(ENCODINGS))
def test_each_committed_file_is_decoded_and_split_as_expected(name):
    encoding, delimiter = ENCODINGS[name]
    with open(FILES / name, "rb") as stream:
        reader = CdrReader(stream)
        rows = list(reader.rows())
    assert (reader.encoding, reader.delimiter) == (encoding, delimiter)
    assert [line for line, _f in rows] == [2, 3, 4, 5, 6]
    first = rows[0][1]
    assert first[reader.columns["start_time"]] == "2026-03-02 09:15:00"
    assert first[reader.columns["call_id"]].endswith("-001")


def test_gbk_text_is_read_as_chinese():
    with open(FILES / "gbk.csv", "rb") as stream:
        reader = CdrReader(stream)
        fields = next(reader.rows())[1]
    assert fields[reader.columns["caller_area"]] == "广东深圳"
    assert fields[reader.columns["direction"]] == "呼入"


def test_an_undecodable_file_is_refused():
    with open(FILES / "undecodable.csv", "rb") as stream, pytest.raises(CdrFileError):
        detect_encoding(stream)


def test_a_utf16_bom_with_broken_content_is_refused():
    with pytest.raises(CdrFileError):
        detect_encoding(io.BytesIO(b"\xff\xfea\x00b"))  # odd number of bytes


def test_detection_order_prefers_utf8_over_gb18030():
    text = "呼叫ID,400号码\n".encode()
    assert detect_encoding(io.BytesIO(text)) == "utf-8"
    assert detect_encoding(io.BytesIO(text.decode().encode("gbk"))) == "gb18030"


def test_headers_match_english_or_chinese_in_any_order_and_ignore_extras():
    header = ["备注", "呼叫结果", "Start Time", "呼叫ID", "400号码", "通话时长（秒）"]
    header += ["direction", "CALLER_NUMBER", "extra"]
    columns = header_columns(header)
    assert columns["status"] == 1 and columns["start_time"] == 2
    assert columns["duration_seconds"] == 5 and columns["caller_number"] == 7
    assert "caller_area" not in columns


def test_a_header_lacking_a_required_column_is_refused_with_its_names():
    with pytest.raises(CdrFileError) as info:
        header_columns(["call_id", "service_number", "caller_number", "start_time"])
    assert "duration_seconds" in info.value.message
    assert "通话时长(秒)" in info.value.message


def test_a_column_given_twice_is_refused():
    with pytest.raises(CdrFileError):
        header_columns(["call_id", "呼叫ID", "service_number"])


@pytest.mark.parametrize(
    ("line", "expected"),
    [("a,b\tc,d", ","), ("a\tb\tc,d", "\t"), ("呼叫ID\t400号码", "\t")],
)
def test_the_separator_is_sniffed_from_the_header(line, expected):
    assert sniff_delimiter(line) == expected


@pytest.mark.parametrize(
    ("value", "local"),
    [
        ("2026-03-01 08:00:00", "2026-03-01 08:00:00"),
        (" 2026-03-01 08:00:00 ", "2026-03-01 08:00:00"),
        ("2026-03-01 00:00:00+00:00", "2026-03-01 08:00:00"),
        ("2026-02-28 20:00:00Z", "2026-03-01 04:00:00"),
        ("2026-03-31 23:30:00+0900", "2026-03-31 22:30:00"),
    ],
)
def test_start_times_are_shanghai_unless_an_offset_says_otherwise(value, local):
    assert parse_start(value) == local


@pytest.mark.parametrize(
    "value",
    [
        "2026/03/01 08:00",
        "2026-02-30 08:00:00",
        "2026-03-01T08:00:00",
        "45351.33",
        "2026-03-01 24:00:00",
        "2026-03-01 08:00:00 CST",
        "",
    ],
)
def test_other_time_formats_are_bad_dates(value):
    with pytest.raises(RowError):
        parse_start(value)


@given(st.datetimes(min_value=__import__("datetime").datetime(2000, 1, 1)))
def test_any_formatted_local_time_parses_to_itself(moment):
    text = moment.strftime("%Y-%m-%d %H:%M:%S")
    assert parse_start(text) == text


def test_a_valid_row_is_normalised():
    call = RowValidator(NUMBERS, agent_id=31).validate(row())
    assert call == (
        "C-1",
        1,
        11,
        21,
        "138****1234",
        "广东深圳",
        "",
        "2026-03-02 09:15:00",
        "2026-03-01",
        61,
        "inbound",
        "answered",
    )


def test_the_subscription_in_force_on_the_day_is_chosen():
    v = RowValidator(NUMBERS, agent_id=None)
    old = v.validate(row(service_number="4008100002", start_time="2025-06-01 10:00:00"))
    new = v.validate(
        row(
            call_id="C-2", service_number="4008100002", start_time="2026-03-10 00:00:00"
        )
    )
    assert (old[2], new[2]) == (12, 13)
    with pytest.raises(RowError, match="not in service"):
        v.validate(
            row(
                call_id="C-3",
                service_number="4008100002",
                start_time="2026-03-09 23:59:59",
            )
        )


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"duration_seconds": "-1"}, "negative"),
        ({"duration_seconds": "1.5"}, "whole number"),
        ({"duration_seconds": "²"}, "whole number"),
        ({"direction": "in"}, "Unknown direction"),
        ({"status": "busy"}, "Unknown result"),
        ({"call_id": ""}, "Missing value"),
        ({"caller_number": "1.38001E+10"}, "Excel"),
        ({"service_number": "4.008E+09"}, "Excel"),
        ({"call_id": "4.00811E+19"}, "Excel"),
        ({"service_number": "4008999999"}, "Unknown 400 number"),
        ({"service_number": "4008300001"}, "not in service"),
        ({"service_number": "8008100001"}, "not a 400 number"),
        ({"caller_number": "=cmd|' /C calc'!A0"}, "not a phone number"),
        ({"call_id": "x" * 65}, "longer than"),
    ],
)
def test_bad_values_are_explained(changes, fragment):
    from django.utils import translation

    with translation.override("en"), pytest.raises(RowError) as info:
        RowValidator(NUMBERS, agent_id=31).validate(row(**changes))
    assert fragment in info.value.reason


def test_an_agent_may_not_import_another_agents_number():
    v = RowValidator(NUMBERS, agent_id=99)
    with pytest.raises(RowError, match="not a number of your companies"):
        v.validate(row())


def test_a_number_that_changed_agents_is_checked_on_the_call_date():
    v = RowValidator(NUMBERS, agent_id=32)
    with pytest.raises(RowError, match="On 2025-06-01"):
        v.validate(row(service_number="4008100002", start_time="2025-06-01 10:00:00"))
    assert (
        v.validate(
            row(
                call_id="C-9",
                service_number="4008100002",
                start_time="2026-03-11 10:00:00",
            )
        )[2]
        == 13
    )


def test_a_call_id_seen_earlier_in_the_file_is_a_duplicate_row():
    v = RowValidator(NUMBERS, agent_id=None)
    v.validate(row())
    with pytest.raises(RowError, match="more than once"):
        v.validate(row(start_time="2026-03-03 10:00:00"))


def test_a_short_row_reports_the_first_missing_column():
    with pytest.raises(RowError, match="caller_number"):
        RowValidator(NUMBERS, agent_id=None).validate(["C-1", "4008100001"])
