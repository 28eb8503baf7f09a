"""A column-wise fast path for CDR files: exactly the result of ``CdrReader``
and ``RowValidator``, in a fraction of the time.

Reading and validating a million rows one by one costs 6–10 s of interpreter
time. Most rows of a carrier's file are alike and plain: an ASCII call id, a
400 number in its canonical form, ``YYYY-MM-DD HH:MM:SS``, a few digits of
duration. ``FastReader`` reads the file with pyarrow's streaming CSV reader
in blocks of about 1 MB and decides column by column, in C++, which rows are
**canonical**: rows ``RowValidator.validate`` certainly accepts and returns
unchanged. Those leave as Arrow arrays (``FastBatch.calls``; as PostgreSQL
CSV written by pyarrow, ``FastBatch.copy_csv``) without a Python object per
row. Every other non-blank row goes to
``FastBatch.others`` with its line and fields, exactly as ``CdrReader.rows()``
gives them, and the caller runs ``validate`` on it. So the fast path never
rejects a row and holds no second definition of a valid row: it recognises a
subset whose validation is trivial, and leaves every reason for a refusal,
every odd spelling (``400-810-8888``, ``+08:00``, `` 61 ``, ``007``) and every
corner case to ``validate``.

Why each accepted row is exact. The checks come in two kinds:

- shapes over whole columns, chosen so that a matching value is its own
  ``str.strip()`` and passes every check ``validate`` makes of that column:
  call ids of 1–64 printable ASCII characters without space, not shaped like
  ``_EXCEL_NUMBER``; phone numbers of ``_PHONE`` characters, at most 32, no
  space at either end (space is the only whitespace ``_PHONE`` allows), the
  answer number also empty; durations ``0`` or 1–9 digits without a leading
  zero (the text is ``int()``'s own decimal form, below ``MAX_DURATION``);
  start times ``YYYY-MM-DD HH:MM:SS`` without an offset, hour 00–23, minute
  and second 00–59. They are matched in one pass over the values joined by a
  tab, which none of the shapes allows, so the joined text matches exactly
  when every value does;
- per *distinct* value, in Python, the very code ``validate`` runs: the
  service number (strip, Excel check, ``canonicalize_400``), the direction
  and the status (``DIRECTIONS``/``STATUSES`` after strip and lower), the
  caller area (strip, characters, length; the stripped text is copied), the
  date of the start time (``parse_start`` of the date at 00:00:00: with a
  valid time of day, a start is valid exactly when its date is; years before
  1000 are left to ``validate``), and per distinct (number, local day)
  ``RowValidator._span``, which holds the unknown-number, agent and
  in-service checks. A block has a few hundred distinct values of these, not
  ten thousand; they are remembered in Arrow arrays from block to block, so
  only new ones reach Python.

Duplicate call ids are not looked for (the import finds them in the
database): the validator must be built with ``in_file_duplicates=False``.

Line numbers. ``CdrReader`` counts physical lines (header = line 1), and the
``csv`` module splits a line on the delimiter only, when it holds no quote
character. ``fast_eligible`` admits files with no ``"`` at all, no blank line
and no lone CR: there the data row *k* (0-based, all-empty rows included) is
on line *k* + 2, and pyarrow's fields (quoting off) are the ``csv`` module's.
A row with more or fewer fields than the header is set aside by pyarrow with
its number (single-threaded parsing numbers the rows) and reported in
``others``, split on the delimiter as ``csv`` splits it. Rows whose fields
are all empty are skipped, as ``CdrReader.rows()`` skips them.

When the fast path cannot vouch for a file, ``batches()`` raises
``FastUnavailable`` (possibly after some batches) and the caller reads the
file again with ``CdrReader``: a field longer than ``csv.field_size_limit()``
(where ``csv`` fails), a row longer than a block, a first data row starting
with U+FEFF (pyarrow would drop it as a byte-order mark), a header other than
the one given.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import BinaryIO

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from billing.cdr_format import (
    _EXCEL_NUMBER,
    CHUNK,
    DIRECTIONS,
    FIELD_ORDER,
    MAX_AREA,
    STATUSES,
    RowError,
    RowValidator,
    _encodable,
    bytes_read,
    parse_start,
)
from billing.partitions import month_bounds
from plans.numbers import InvalidNumber, canonicalize_400

# The columns of ``copy_csv``: the line, then the ValidCall tuple.
COPY_COLUMNS = (
    "line",
    "call_id",
    "number_id",
    "subscription_id",
    "company_id",
    "caller_number",
    "caller_area",
    "answer_number",
    "start_local",
    "period",
    "duration_seconds",
    "direction",
    "status",
)

# The shape of the plain columns, checked in one pass over the row's
# call_id, caller_number, [answer_number,] start_time and duration_seconds
# joined by a tab. No pattern matches a tab, so the joined text matches only
# when each value matches its own pattern.
#
# call_id: printable ASCII without space, 1 to MAX_CALL_ID (64): its own
# strip(), no NUL, encodable.
_CALL_ID = r"[!-~]{1,64}"
# _PHONE's characters, 1 to MAX_PHONE (32), no space at either end (the only
# whitespace _PHONE allows), so strip() changes nothing.
_PHONE_NUMBER = r"[0-9+*#()\-](?:[0-9+*#() \-]{0,30}[0-9+*#()\-])?"
# No offset; a real time of day. Whether the date is a real one is checked
# per distinct day.
_START = r"[0-9]{4}-[0-9]{2}-[0-9]{2} (?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
# At most 999,999,999 < MAX_DURATION, without leading zeros: the text is
# int()'s decimal form (``007`` goes to ``validate``).
_DURATION = r"(?:0|[1-9][0-9]{0,8})"
# _EXCEL_NUMBER for a value without whitespace.
_EXCEL_ID = r"^[0-9](?:\.[0-9]+)?[eE][+-]?[0-9]+$"

# Columns of a few hundred distinct values at most, read as dictionaries.
_FEW_VALUES = ("service_number", "caller_area", "direction", "status")

# Distinct values kept per column between blocks (forgetting costs only time).
_LOOKUP_LIMIT = 8192


class FastUnavailable(Exception):
    """The fast path cannot vouch for this file: read it with ``CdrReader``."""


@dataclass
class FastBatch:
    rows: int  # non-blank rows of this batch (for rows_read)
    # The rows accepted column-wise: COPY_COLUMNS, all text (ids included),
    # the line as int64; None when there are none.
    calls: pa.RecordBatch | None
    others: list[tuple[int, list[str]]]  # (line, fields) of every other row

    @property
    def copied(self) -> int:
        """How many rows were accepted column-wise."""
        return 0 if self.calls is None else self.calls.num_rows

    @property
    def copy_csv(self) -> bytes:
        """The accepted rows as PostgreSQL CSV (COPY_COLUMNS, no header)."""
        return b"" if self.calls is None else copy_csv(self.calls)


def copy_csv(table: pa.RecordBatch | pa.Table) -> bytes:
    """``table`` as PostgreSQL CSV without a header. Every string is quoted
    ("needed" quoting), so that an empty one is not read as NULL."""
    sink = pa.BufferOutputStream()
    pa_csv.write_csv(
        table,
        sink,
        pa_csv.WriteOptions(
            include_header=False,
            batch_size=max(table.num_rows, 1),
            quoting_style="needed",
        ),
    )
    return sink.getvalue().to_pybytes()


# --- eligibility --------------------------------------------------------------


def fast_eligible(stream: BinaryIO, encoding: str) -> bool:
    """True when the file has no ``"``, no blank line and no lone CR.

    ``encoding`` is what ``detect_encoding`` returned. The bytes of UTF-8 and
    GB18030 files are scanned as they are (``"``, LF and CR never occur
    inside a GB18030 multi-byte character); UTF-16 is decoded incrementally
    and scanned as UTF-8. ``stream`` is left at position 0.
    """
    name = _codec_name(encoding)
    if name not in ("utf-8", "utf-8-sig", "utf-16", "gb18030"):
        return False
    stream.seek(0)
    try:
        if name == "utf-16":
            return _plain_lines(_utf8_chunks(stream, encoding))
        return _plain_lines(_raw_chunks(stream))
    finally:
        stream.seek(0)


def _codec_name(encoding: str) -> str:
    try:
        return codecs.lookup(encoding).name
    except LookupError:
        return ""


def _raw_chunks(stream: BinaryIO) -> Iterator[bytes]:
    first = stream.read(CHUNK)
    # The BOM is not part of the first line.
    yield first.removeprefix(codecs.BOM_UTF8)
    while chunk := stream.read(CHUNK):
        yield chunk


def _utf8_chunks(stream: BinaryIO, encoding: str) -> Iterator[bytes]:
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    while chunk := stream.read(CHUNK):
        yield decoder.decode(chunk).encode()
    yield decoder.decode(b"", final=True).encode()


def _plain_lines(chunks: Iterator[bytes]) -> bool:
    lines = PlainLines(strip_bom=False)  # the chunks come without it
    for chunk in chunks:
        lines.feed(chunk)
    return lines.result()


class PlainLines:
    """Whether raw chunks of a UTF-8 or GB18030 file, fed in order, hold no
    ``"``, no blank line and no lone CR (the BOM is not part of the first
    line). A ``ChunkWatcher`` of the encoding check: ``fed`` tells whether it
    saw the file that way (``fast_eligible`` reads it otherwise)."""

    def __init__(self, *, strip_bom: bool = True):
        self.strip_bom = strip_bom
        self._start()
        self.fed = False

    def reset(self) -> None:
        self._start()
        self.fed = True

    def _start(self) -> None:
        self.plain = True
        self.first = True
        self.rest = b""  # the line the previous chunk ended in
        self.line_ends = 0  # LFs seen (while plain): the file has one line more

    def feed(self, chunk: bytes) -> None:
        if not self.plain:
            return
        if self.first:
            if self.strip_bom:
                chunk = chunk.removeprefix(codecs.BOM_UTF8)
            self.first = False
        if b'"' in chunk:
            self.plain = False
            return
        data = self.rest + chunk
        end = data.rfind(b"\n") + 1
        if not end:
            # No line ends here: a CR followed by more is alone; two bytes
            # tell a CR or an empty line that an LF may end in the next chunk.
            if b"\r" in data[:-1]:
                self.plain = False
            self.rest = data[-2:]
            return
        self.rest = data[end:]
        # bytes.splitlines() ends lines at LF, CRLF and at a CR alone: as many
        # lines as LFs unless a CR stands alone. An empty one is a blank line
        # (or, in ``rest``, a CR with nothing before it: never eligible).
        lines = data.splitlines()
        ends = data.count(b"\n")
        self.line_ends += ends
        if len(lines) - len(self.rest.splitlines()) != ends or b"" in lines:
            self.plain = False

    def result(self) -> bool:
        return self.plain and b"\r" not in self.rest  # nothing follows a last CR


# --- reading ------------------------------------------------------------------


class FastReader:
    """Reads a fast-eligible CDR file in blocks: ``for batch in reader.batches()``.

    ``encoding``, ``delimiter``, ``header`` and ``columns`` are those of the
    ``CdrReader`` built on the same stream; ``validator`` is the one the
    caller runs on ``FastBatch.others`` (``in_file_duplicates=False``).
    ``batches()`` raises ``FastUnavailable`` when the file must be read with
    ``CdrReader`` after all, possibly after some batches: the caller then
    discards them and starts again.
    """

    def __init__(
        self,
        stream: BinaryIO,
        *,
        encoding: str,
        delimiter: str,
        header: list[str],
        columns: Mapping[str, int],
        validator: RowValidator,
        block_size: int = 1 << 20,
    ):
        index = tuple(columns.get(f, -1) for f in FIELD_ORDER)
        if validator.in_file_duplicates:
            raise ValueError("FastReader needs RowValidator(in_file_duplicates=False)")
        if index != validator.index:
            raise ValueError("the validator was built for other columns")
        self.stream = stream
        self.encoding = encoding
        self.delimiter = delimiter
        self.header = list(header)
        self.validator = validator
        self.block_size = block_size
        self._index = dict(zip(FIELD_ORDER, index, strict=True))
        # Rows pyarrow set aside (wrong number of fields): (number, text),
        # numbered from 1 at the first data line.
        self._set_aside: list[tuple[int, str]] = []
        self._unnumbered = False
        self._next = 1  # the number of the next data row not yet reported
        self._arange = pa.array([], pa.int64())
        # Per distinct value: the index of its canonical 400 number (service
        # numbers), of its day (start dates), the validator's verdict.
        self._numbers: list[str] = []
        self._number_index: dict[str, int] = {}
        self._days: list[str] = []
        self._day_index: dict[str, int] = {}
        self._services = Lookup(pa.string(), [pa.int64()], self._service)
        self._calendar = Lookup(
            pa.string(), [pa.int64(), pa.string(), pa.int64()], self._day
        )
        self._months: dict[str, int] = {}  # period text → its index
        self._month_names: list[str] = []  # and back
        # The ids as text: copy_csv writes text faster than integers.
        self._subscriptions = Lookup(pa.int64(), [pa.string()] * 3, self._span)
        self._month_subscriptions = Lookup(
            pa.int64(), [pa.string()] * 3, self._month_span
        )
        self._directions = Lookup(pa.string(), [pa.string()], _direction)
        self._statuses = Lookup(pa.string(), [pa.string()], _status)
        self._areas = Lookup(pa.string(), [pa.string()], _area)

    @property
    def bytes_read(self) -> int:
        """How far the binary stream has been read (for progress bars)."""
        return bytes_read(self.stream)

    def batches(self) -> Iterator[FastBatch]:
        """The file's rows after the header, block by block (call it once)."""
        source = self._skip_header()
        if source is None:
            return
        names = [f"c{i}" for i in range(len(self.header))]
        types = dict.fromkeys(names, pa.string())
        for field in _FEW_VALUES:
            if self._index[field] >= 0:
                # Encoded while parsing: cheaper than dictionary_encode later.
                types[names[self._index[field]]] = pa.dictionary(
                    pa.int32(), pa.string()
                )
        try:
            reader = pa_csv.open_csv(
                self.stream,
                read_options=pa_csv.ReadOptions(
                    column_names=names,
                    block_size=self.block_size,
                    # Single-threaded parsing numbers the rows it sets aside.
                    use_threads=False,
                    encoding=source,
                ),
                parse_options=pa_csv.ParseOptions(
                    delimiter=self.delimiter,
                    quote_char=False,
                    escape_char=False,
                    newlines_in_values=False,
                    ignore_empty_lines=False,
                    invalid_row_handler=self._set_aside_row,
                ),
                convert_options=pa_csv.ConvertOptions(
                    column_types=types,
                    strings_can_be_null=False,
                    quoted_strings_can_be_null=False,
                ),
            )
        except pa.ArrowException as exc:
            raise FastUnavailable(str(exc)) from exc
        while True:
            try:
                block = reader.read_next_batch()
            except StopIteration:
                break
            except pa.ArrowException as exc:  # e.g. a row longer than a block
                raise FastUnavailable(str(exc)) from exc
            if self._unnumbered:
                raise FastUnavailable("a row of another width, without its number")
            yield self._batch(block)
        if self._unnumbered:
            raise FastUnavailable("a row of another width, without its number")
        others = self._take_set_aside(None)
        if others:
            yield FastBatch(rows=len(others), calls=None, others=others)

    # -- the header and the rows pyarrow sets aside ---------------------------

    def _skip_header(self) -> str | None:
        """Position the stream on the first data line; its encoding for pyarrow.

        None when the file has no data line.
        """
        name = _codec_name(self.encoding)
        stream = self.stream
        stream.seek(0)
        head = stream.read(1 << 16)
        if name == "utf-16":
            if head.startswith(codecs.BOM_UTF16_LE):
                source, newline = "utf-16-le", b"\n\x00"
            elif head.startswith(codecs.BOM_UTF16_BE):
                source, newline = "utf-16-be", b"\x00\n"
            else:
                raise FastUnavailable("a UTF-16 file without a byte-order mark")
            step = 2
        elif name in ("utf-8", "utf-8-sig", "gb18030"):
            source = "gb18030" if name == "gb18030" else "utf8"
            newline, step = b"\n", 1
        else:
            raise FastUnavailable(f"no fast path for {self.encoding}")
        # The end of the header line: the first newline on a character
        # boundary (UTF-16 code units start at even offsets, after the BOM).
        at = head.find(newline)
        while True:
            while at >= 0 and at % step:
                at = head.find(newline, at + 1)
            if at >= 0:
                end = at + len(newline)
                break
            chunk = stream.read(1 << 16)
            if not chunk:
                end = len(head)
                break
            head += chunk
            at = head.find(newline, max(0, len(head) - len(chunk) - len(newline)))
        text = head[:end].decode(self.encoding).removesuffix("\n").removesuffix("\r")
        if text.split(self.delimiter) != self.header:
            raise FastUnavailable("the header is not the one given")
        stream.seek(end)
        first = stream.read(8)
        stream.seek(end)
        if not first:
            return None
        decoder = codecs.getincrementaldecoder(source)(errors="replace")
        if decoder.decode(first).startswith("\ufeff"):
            raise FastUnavailable("the first data row starts with U+FEFF")
        return source

    def _set_aside_row(self, row) -> str:
        if row.number is None:
            self._unnumbered = True
        else:
            self._set_aside.append((row.number, row.text))
        return "skip"

    def _numbered(self, count: int) -> tuple[pa.Array, list[tuple[int, list[str]]]]:
        """File lines of the next ``count`` rows pyarrow returned, and the
        non-blank rows it set aside before and among them."""
        first = self._next
        self._set_aside.sort()
        if not self._set_aside or self._set_aside[0][0] >= first + count:
            self._next = first + count
            if len(self._arange) < count:
                self._arange = pa.array(range(max(count, 2 * len(self._arange))))
            return pc.add(self._arange.slice(0, count), first + 1), []
        numbers: list[int] = []
        number = first
        aside = iter(self._set_aside)
        pending = next(aside, None)
        while len(numbers) < count:
            while pending is not None and pending[0] == number:
                number += 1
                pending = next(aside, None)
            if pending is not None and pending[0] < number:
                raise FastUnavailable("rows were set aside out of order")
            stop = number + count - len(numbers)
            if pending is not None:
                stop = min(stop, pending[0])
            numbers.extend(range(number, stop))
            number = stop
        self._next = number
        others = self._take_set_aside(number)
        return pa.array([n + 1 for n in numbers], pa.int64()), others

    def _take_set_aside(self, before: int | None) -> list[tuple[int, list[str]]]:
        """The non-blank rows set aside with a number below ``before`` (all)."""
        self._set_aside.sort()
        taken = [r for r in self._set_aside if before is None or r[0] < before]
        del self._set_aside[: len(taken)]
        others = []
        limit = csv.field_size_limit()
        for number, text in taken:
            fields = text.split(self.delimiter)
            if any(len(f) > limit for f in fields):
                raise FastUnavailable("a field is larger than the csv field limit")
            if any(fields):
                others.append((number + 1, fields))
        return others

    # -- one block -------------------------------------------------------------

    def _batch(self, block: pa.RecordBatch) -> FastBatch:
        count = block.num_rows
        lines, others = self._numbered(count)
        if count == 0:
            return FastBatch(rows=len(others), calls=None, others=others)
        limit = csv.field_size_limit()
        for column in block.columns:
            if pa.types.is_dictionary(column.type):
                column = column.dictionary
            longest = pc.max(pc.binary_length(column)).as_py() or 0
            if longest > limit:  # csv counts characters: UTF-8 has as many bytes
                raise FastUnavailable("a field is larger than the csv field limit")
        accepted, out = self._canonical(block)
        copied = pc.sum(accepted).as_py() or 0
        calls = None
        if copied:
            copy_lines = lines
            if copied < count:
                keep = pc.indices_nonzero(accepted)
                copy_lines = lines.take(keep)
                out = [a.take(keep) for a in out]
            calls = pa.RecordBatch.from_arrays([copy_lines, *out], names=COPY_COLUMNS)
        if copied < count:
            rest = pc.indices_nonzero(pc.invert(accepted))
            rows = zip(*(c.take(rest).to_pylist() for c in block.columns), strict=True)
            others.extend(
                (line, list(fields))
                for line, fields in zip(lines.take(rest).to_pylist(), rows, strict=True)
                if any(fields)
            )
            others.sort(key=_line_of)
        return FastBatch(rows=copied + len(others), calls=calls, others=others)

    def _canonical(self, block: pa.RecordBatch) -> tuple[pa.Array, list[pa.Array]]:
        """Which rows are canonical, and the ValidCall columns of every row
        (meaningful where canonical)."""
        count = block.num_rows

        def column(field: str) -> pa.Array | None:
            i = self._index[field]
            return block.column(i) if i >= 0 else None

        call_id, caller, answer = column("call_id"), column("caller_number"), None
        start, duration = column("start_time"), column("duration_seconds")
        plain, patterns = [call_id, caller], [_CALL_ID, _PHONE_NUMBER]
        if (answer := column("answer_number")) is not None:
            plain.append(answer)
            patterns.append(f"(?:{_PHONE_NUMBER})?")
        else:
            answer = pa.repeat(pa.scalar("", pa.string()), count)
        plain += [start, duration]
        patterns += [_START, _DURATION]
        joined = pc.binary_join_element_wise(*plain, "\t")
        checks = [
            pc.match_substring_regex(joined, "^" + "\t".join(patterns) + "$"),
            pc.invert(pc.match_substring_regex(call_id, _EXCEL_ID)),
        ]
        (number,) = _per_value(column("service_number"), self._services)
        day, period, month = _per_value(
            pc.utf8_slice_codeunits(start, 0, 10), self._calendar
        )
        (direction,) = _per_value(column("direction"), self._directions)
        (status,) = _per_value(column("status"), self._statuses)
        checks += [pc.is_valid(number), pc.is_valid(day)]
        checks += [pc.is_valid(direction), pc.is_valid(status)]
        if (area := column("caller_area")) is not None:
            (area,) = _per_value(area, self._areas)
            checks.append(pc.is_valid(area))
        else:
            area = pa.repeat(pa.scalar("", pa.string()), count)
        candidate = checks[0]
        for check in checks[1:]:
            candidate = pc.and_(candidate, check)
        candidate = pc.fill_null(candidate, False)

        # The subscription of each (number, local day), by RowValidator._span:
        # per (number, month) where one span covers the whole month (the
        # common case), else per (number, day).
        ids = _per_pair(number, month, candidate, self._month_subscriptions)
        by_day = pc.and_(candidate, pc.is_null(ids[0]))
        if pc.any(by_day).as_py():
            daily = _per_pair(number, day, by_day, self._subscriptions)
            ids = [pc.coalesce(a, b) for a, b in zip(ids, daily, strict=True)]
        accepted = pc.fill_null(pc.and_(candidate, pc.is_valid(ids[0])), False)
        out = [call_id, *ids, caller, area, answer, start, period]
        out += [duration, direction, status]
        return accepted, out

    # -- what RowValidator.validate does, once per distinct value ---------------

    def _service(self, value: str) -> tuple[int | None]:
        number = _service_number(value)
        if number is None:
            return (None,)
        index = self._number_index.get(number)
        if index is None:
            index = self._number_index[number] = len(self._numbers)
            self._numbers.append(number)
        return (index,)

    def _day(self, value: str) -> tuple[int | None, str | None, int | None]:
        # The time of day was checked by _START: the start is valid exactly
        # when its date is; parse_start says so, and gives the local day.
        try:
            local = parse_start(f"{value} 00:00:00")
        except RowError:
            return (None, None, None)
        if local[:4] < "1000":
            return (None, None, None)
        index = self._day_index.get(value)
        if index is None:
            index = self._day_index[value] = len(self._days)
            self._days.append(value)
        period = f"{local[:7]}-01"
        month = self._months.get(period)
        if month is None:
            month = self._months[period] = len(self._month_names)
            self._month_names.append(period)
        return (index, period, month)

    def _month_span(self, pair: int) -> tuple[str | None, str | None, str | None]:
        """The ids of (number, month) when every day of the month has the
        same answer from ``RowValidator._span``, a subscription: exactly one
        span meets the month and covers all of it, and the agent may import
        for it. Else nulls (each day is then asked on its own)."""
        number = self._numbers[pair >> 32]
        month = self._month_names[pair & 0xFFFFFFFF]
        info = self.validator.numbers.get(number)
        if info is None:
            return (None, None, None)
        first, last = month, last_day(month)
        meeting = [
            s
            for s in info.spans
            if s.activated_on <= last and (s.ended_on is None or s.ended_on >= first)
        ]
        if len(meeting) != 1:
            return (None, None, None)
        (span,) = meeting
        if span.activated_on > first or (
            span.ended_on is not None and span.ended_on < last
        ):
            return (None, None, None)
        agent = self.validator.agent_id
        if agent is not None and span.agent_id != agent:
            return (None, None, None)
        return (str(info.number_id), str(span.subscription_id), str(span.company_id))

    def _span(self, pair: int) -> tuple[str | None, str | None, str | None]:
        number, day = self._numbers[pair >> 32], self._days[pair & 0xFFFFFFFF]
        try:
            span = self.validator._span(number, day)
        except RowError:
            return (None, None, None)
        number_id = self.validator.numbers[number].number_id
        return (str(number_id), str(span.subscription_id), str(span.company_id))


class Lookup:
    """``compute(key)`` per distinct key, remembered in Arrow arrays: a
    block's keys are looked up in C++ and only new keys reach Python.

    Only recent keys are kept (at least four blocks' worth), so that the
    hash table built for each lookup stays small.
    """

    def __init__(self, key_type, result_types, compute):
        self.result_types = result_types
        self.compute = compute
        self.keys = pa.array([], key_type)
        self.results = [pa.array([], t) for t in result_types]

    def __call__(self, keys: pa.Array) -> list[pa.Array]:
        """The results of ``keys`` (distinct, not null), in their order."""
        where = pc.index_in(keys, value_set=self.keys)
        if not where.null_count:
            return [pc.take(a, where) for a in self.results]
        missing = pc.is_null(where)
        new = pc.filter(keys, missing)
        computed = [self.compute(key) for key in new.to_pylist()]
        known = pa.concat_arrays([self.keys, new])
        columns = zip(*computed, strict=True)
        results = [
            pa.concat_arrays([a, pa.array(values, t)])
            for a, t, values in zip(
                self.results, self.result_types, columns, strict=True
            )
        ]
        # The new keys are at the end, in their order among ``keys``.
        appended = pc.cumulative_sum(pc.cast(missing, pa.int64()))
        where = pc.if_else(missing, pc.add(appended, len(self.keys) - 1), where)
        found = [pc.take(a, where) for a in results]
        if len(known) > max(_LOOKUP_LIMIT, 4 * len(keys)):
            self.keys, self.results = keys, found
        else:
            self.keys, self.results = known, results
        return found


def _per_value(array: pa.Array, lookup: Lookup) -> list[pa.Array]:
    """The results of ``lookup`` for each value of ``array``."""
    if not pa.types.is_dictionary(array.type):
        array = pc.dictionary_encode(array)
    return [pc.take(a, array.indices) for a in lookup(array.dictionary)]


def _per_pair(
    number: pa.Array, other: pa.Array, where: pa.Array, lookup: Lookup
) -> list[pa.Array]:
    """``lookup`` of (number << 32 | other) for the rows ``where`` is true
    (null elsewhere)."""
    pair = pc.add(pc.shift_left(number, 32), other)
    pair = pc.if_else(where, pair, pa.scalar(None, pa.int64()))
    pairs = pc.drop_null(pc.unique(pair))
    found = pc.index_in(pair, value_set=pairs)
    return [pc.take(a, found) for a in lookup(pairs)]


def last_day(period: str) -> str:
    """The last day of the month ``period`` ("YYYY-MM-01"), as text."""
    _first, following = month_bounds(dt.date.fromisoformat(period))
    return (following - dt.timedelta(days=1)).isoformat()


def _line_of(row: tuple[int, list[str]]) -> int:
    return row[0]


def _service_number(value: str) -> str | None:
    value = value.strip()
    if ("E" in value or "e" in value) and _EXCEL_NUMBER.fullmatch(value):
        return None
    try:
        return canonicalize_400(value)
    except InvalidNumber:
        return None


def _direction(value: str) -> tuple[str | None]:
    return (DIRECTIONS.get(value.strip().lower()),)


def _status(value: str) -> tuple[str | None]:
    return (STATUSES.get(value.strip().lower()),)


def _area(value: str) -> tuple[str | None]:
    value = value.strip()
    if "\x00" in value or (not value.isascii() and not _encodable(value)):
        return (None,)
    if len(value) > MAX_AREA:
        return (None,)
    return (value,)
