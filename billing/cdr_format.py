"""The carrier CDR file format: decoding, headers and per-row validation.

Pure Python, no ORM: ``billing.services.cdr_import`` feeds it the numbers it
knows (``NumberInfo``) and stores what it returns. The API uses the same
``RowValidator`` on JSON objects, so a call is checked the same way however
it arrives. See docs/cdr-import.md for the format as carriers read it.

Decoding (in this order, no charset guessing):
  1. a byte-order mark: UTF-8 BOM, UTF-16 LE BOM, UTF-16 BE BOM;
  2. strict UTF-8 over the whole file;
  3. GB18030 (a superset of GBK and GB2312) over the whole file.
A file that none of them decodes is rejected whole. The check streams the
file in chunks through an incremental decoder, so it never holds the file.

Times: ``YYYY-MM-DD HH:MM:SS`` is Asia/Shanghai local time. A file says
otherwise per value, with an explicit UTC offset after the seconds
(``2026-03-01 00:00:00+00:00``, ``+0000`` or ``Z``); such a time is converted
to Asia/Shanghai before anything else (band, billing month, subscription).
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import re
import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import BinaryIO, Protocol
from zoneinfo import ZoneInfo

from django.utils.translation import gettext as _

from plans.numbers import InvalidNumber, canonicalize_400

SHANGHAI = ZoneInfo("Asia/Shanghai")
CHUNK = 1 << 20

# field → (English header, Chinese header); the order is the order of the
# normalised call tuple the validator returns.
FIELDS: dict[str, tuple[str, str]] = {
    "call_id": ("call_id", "呼叫ID"),
    "service_number": ("service_number", "400号码"),
    "caller_number": ("caller_number", "主叫号码"),
    "caller_area": ("caller_area", "主叫归属地"),
    "answer_number": ("answer_number", "接听号码"),
    "start_time": ("start_time", "开始时间"),
    "duration_seconds": ("duration_seconds", "通话时长(秒)"),
    "direction": ("direction", "呼叫方向"),
    "status": ("status", "呼叫结果"),
}
OPTIONAL = frozenset({"caller_area", "answer_number"})
REQUIRED = tuple(f for f in FIELDS if f not in OPTIONAL)
FIELD_ORDER = tuple(FIELDS)

DIRECTIONS = {"inbound": "inbound", "outbound": "outbound", "呼入": "inbound"}
DIRECTIONS["呼出"] = "outbound"
STATUSES = {"answered": "answered", "missed": "missed", "接通": "answered"}
STATUSES["未接"] = "missed"

MAX_CALL_ID = 64
MAX_PHONE = 32
MAX_AREA = 64
MAX_DURATION = 2_147_483_647

_EXCEL_NUMBER = re.compile(r"\s*[0-9](?:\.[0-9]+)?[eE][+-]?[0-9]+\s*")
_TIME_WITH_OFFSET = re.compile(
    r"([0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2})"
    r"\s*(Z|[+-][0-9]{2}:?[0-9]{2})"
)
_PHONE = re.compile(r"[0-9+*#\- ()]*")


class CdrFileError(ValueError):
    """The whole file is refused (encoding, header); ``message`` says why."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class RowError(ValueError):
    """One row is refused; ``reason`` is the translated explanation."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


# --- decoding -------------------------------------------------------------------


BOMS = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


class ChunkWatcher(Protocol):
    """Sees the raw chunks of the encoding check (``reset`` before each try)."""

    def reset(self) -> None: ...

    def feed(self, chunk: bytes) -> None: ...


def _decodes(stream: BinaryIO, encoding: str, watch: ChunkWatcher | None) -> bool:
    stream.seek(0)
    decoder = codecs.getincrementaldecoder(encoding)(errors="strict")
    if watch is not None:
        watch.reset()
    try:
        while chunk := stream.read(CHUNK):
            decoder.decode(chunk)
            if watch is not None:
                watch.feed(chunk)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


def detect_encoding(stream: BinaryIO, watch: ChunkWatcher | None = None) -> str:
    """The file's encoding by BOM, strict UTF-8, then GB18030 (see module doc).

    ``stream`` must be seekable; it is left at position 0. ``watch`` sees the
    raw chunks of a UTF-8 or GB18030 file as they are checked (so that one
    reading of the file serves another scan too).
    """
    stream.seek(0)
    head = stream.read(4)
    candidates: tuple[str, ...] = ("utf-8", "gb18030")
    for bom, encoding in BOMS:
        if head.startswith(bom):
            candidates = (encoding,)
            break
    try:
        for encoding in candidates:
            if _decodes(stream, encoding, None if encoding == "utf-16" else watch):
                return encoding
    finally:
        stream.seek(0)
    if len(candidates) == 1:
        raise CdrFileError(
            _(
                "The file starts with a %(encoding)s byte-order mark but is not "
                "valid %(encoding)s. Save it again as UTF-8 and upload it again."
            )
            % {"encoding": candidates[0].upper().replace("-SIG", "")}
        )
    raise CdrFileError(
        _(
            "The file could not be read: it is neither UTF-8 (with or without a "
            "byte-order mark), UTF-16 with a byte-order mark nor GBK/GB18030. "
            "Save it as “CSV UTF-8” and upload it again."
        )
    )


# --- headers ----------------------------------------------------------------------


def _normalise_header(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).strip().strip("\ufeff").strip()
    # "Start Time", "start_time" and "start-time" are the same header.
    return text.lower().replace(" ", "").replace("_", "").replace("-", "")


_HEADER_ALIASES: dict[str, str] = {}
for _field, (_en, _zh) in FIELDS.items():
    _HEADER_ALIASES[_normalise_header(_en)] = _field
    _HEADER_ALIASES[_normalise_header(_zh)] = _field


def header_columns(header: Sequence[str]) -> dict[str, int]:
    """Map each known field to its column index; raise CdrFileError if unusable."""
    columns: dict[str, int] = {}
    for index, title in enumerate(header):
        field = _HEADER_ALIASES.get(_normalise_header(title))
        if field is None:
            continue  # extra columns are ignored
        if field in columns:
            raise CdrFileError(
                _("The column “%(column)s” appears twice in the header row.")
                % {"column": FIELDS[field][0]}
            )
        columns[field] = index
    missing = [f for f in REQUIRED if f not in columns]
    if missing:
        names = "、".join(f"{FIELDS[f][0]} ({FIELDS[f][1]})" for f in missing)
        raise CdrFileError(
            _(
                "The header row lacks required columns: %(columns)s. Nothing was "
                "imported."
            )
            % {"columns": names}
        )
    return columns


def sniff_delimiter(header_line: str) -> str:
    """Tab when the header line has more tabs than commas, else comma."""
    return "\t" if header_line.count("\t") > header_line.count(",") else ","


# --- reading rows -----------------------------------------------------------------


def bytes_read(stream: BinaryIO) -> int:
    """How far ``stream`` has been read (for progress bars); 0 if unknown."""
    try:
        return stream.tell()
    except (OSError, ValueError):
        return 0


class CdrReader:
    """Streams the rows of a CDR file: ``for line, fields in reader.rows()``.

    Construction reads the encoding check and the header row and raises
    ``CdrFileError`` for a file to reject whole. ``bytes_read`` tells how far
    the underlying binary stream has been read (for progress bars).
    """

    def __init__(
        self,
        stream: BinaryIO,
        *,
        encoding: str | None = None,
        watch: ChunkWatcher | None = None,
    ):
        self.stream = stream
        self.watch = None if encoding else watch  # what saw the file, if any
        self.encoding = encoding or detect_encoding(stream, watch)
        stream.seek(0)
        self._text = io.TextIOWrapper(
            stream, encoding=self.encoding, newline="", errors="strict"
        )
        self._text._CHUNK_SIZE = 256 * 1024  # fewer, larger reads
        self._detached = False
        header_line = self._text.readline()
        if not header_line.strip():
            raise CdrFileError(_("The file is empty: it has no header row."))
        self.delimiter = sniff_delimiter(header_line)
        header = next(csv.reader([header_line], delimiter=self.delimiter))
        self.header = header
        self.columns = header_columns(header)

    @property
    def bytes_read(self) -> int:
        return bytes_read(self.stream)

    def rows(self) -> Iterator[tuple[int, list[str]]]:
        """(line number, fields) of each non-blank row; the header is line 1."""
        reader = csv.reader(self._text, delimiter=self.delimiter, strict=False)
        line = 1
        for fields in reader:
            start = line + 1
            line = 1 + reader.line_num
            if not any(fields):
                continue
            yield start, fields

    def raw(self, fields: Sequence[str]) -> str:
        return self.delimiter.join(fields)

    def detach(self) -> None:
        """Release the binary stream without closing it (once; then a no-op)."""
        if not self._detached:
            self._detached = True
            self._text.detach()


# --- validating rows --------------------------------------------------------------


@dataclass(frozen=True)
class SubscriptionSpan:
    """A subscription of a number: active from ``activated_on`` to ``ended_on``.

    Dates are ISO strings (``"2026-03-01"``, ``None`` = open) so a call's local
    date compares as text on the hot path.
    """

    subscription_id: int
    company_id: int
    agent_id: int
    activated_on: str
    ended_on: str | None


@dataclass(frozen=True)
class NumberInfo:
    number_id: int
    spans: tuple[SubscriptionSpan, ...]


# A valid call, ready for storage:
# (call_id, number_id, subscription_id, company_id, caller_number, caller_area,
#  answer_number, start_local "YYYY-MM-DD HH:MM:SS" (Asia/Shanghai),
#  period "YYYY-MM-01", duration_seconds, direction, status)
ValidCall = tuple[str, int, int, int, str, str, str, str, str, int, str, str]


def _encodable(text: str) -> bool:
    """False for text with lone surrogates (possible in JSON, never in files)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def parse_start(value: str) -> str:
    """``value`` → Asia/Shanghai local ``YYYY-MM-DD HH:MM:SS``; RowError if bad."""
    text = value.strip()
    if (
        len(text) == 19
        and text[10] == " "
        and text[4] == text[7] == "-"
        and text[13] == text[16] == ":"
    ):
        try:
            dt.datetime.fromisoformat(text)
        except ValueError:
            pass
        else:
            return text
    else:
        match = _TIME_WITH_OFFSET.fullmatch(text)
        if match is not None:
            local, offset = match.groups()
            if offset == "Z":
                offset = "+00:00"
            elif ":" not in offset:
                offset = f"{offset[:3]}:{offset[3:]}"
            try:
                moment = dt.datetime.fromisoformat(f"{local}{offset}")
            except ValueError:
                pass
            else:
                return moment.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M:%S")
    raise RowError(
        _(
            "Bad start time “%(value)s”: use YYYY-MM-DD HH:MM:SS (Asia/Shanghai), "
            "e.g. 2026-03-01 08:30:00."
        )
        % {"value": text}
    )


def duplicate_in_file_reason(call_id: str) -> str:
    return _("The call_id %(call_id)s appears more than once in this file.") % {
        "call_id": call_id
    }


class RowValidator:
    """Checks rows one by one; remembers call ids to catch duplicates in a file.

    ``numbers`` maps canonical 400 numbers to what the database knows of them;
    ``agent_id`` (None for a superuser's import) limits the calls to numbers of
    that agent's companies.
    """

    def __init__(
        self,
        numbers: Mapping[str, NumberInfo],
        *,
        agent_id: int | None,
        columns: Mapping[str, int] | None = None,
        in_file_duplicates: bool = True,
    ):
        self.numbers = numbers
        self.agent_id = agent_id
        columns = columns or {f: i for i, f in enumerate(FIELD_ORDER)}
        self.index = tuple(columns.get(f, -1) for f in FIELD_ORDER)
        # The call ids seen so far (when ``in_file_duplicates``; the
        # PostgreSQL import finds them in the database instead). A dict, not
        # a set: a dict of strings is not tracked by the garbage collector,
        # which would otherwise walk every id on each full collection.
        self.in_file_duplicates = in_file_duplicates
        self.seen: dict[str, None] = {}
        self._span_cache: dict[tuple[str, str], SubscriptionSpan] = {}

    def validate(self, fields: Sequence[str]) -> ValidCall:
        """The normalised call, or RowError with the first reason found."""
        n = len(fields)
        values = [fields[i].strip() if 0 <= i < n else "" for i in self.index]
        call_id, service, caller, area, answer, start, duration, direction, status = (
            values
        )
        if (
            not (call_id and service and caller and start and duration and direction)
            or not status
        ):
            for field, value in zip(FIELD_ORDER, values, strict=True):
                if not value and field not in OPTIONAL:
                    raise RowError(
                        _("Missing value in column “%(column)s”.")
                        % {"column": FIELDS[field][0]}
                    )
        for field, value in (("call_id", call_id), ("caller_area", area)):
            if "\x00" in value or (not value.isascii() and not _encodable(value)):
                raise RowError(
                    _("The %(column)s contains characters that are not allowed.")
                    % {"column": FIELDS[field][0]}
                )
        if len(call_id) > MAX_CALL_ID:
            raise RowError(
                _("The call_id is longer than %(max)d characters.")
                % {"max": MAX_CALL_ID}
            )
        for field, value in (
            ("call_id", call_id),
            ("service_number", service),
            ("caller_number", caller),
            ("answer_number", answer),
        ):
            if ("E" in value or "e" in value) and _EXCEL_NUMBER.fullmatch(value):
                raise RowError(
                    _(
                        "The %(column)s “%(value)s” was damaged by Excel (shown "
                        "in scientific notation). Format the column as text and "
                        "export the file again."
                    )
                    % {"column": FIELDS[field][0], "value": value}
                )
        try:
            number = canonicalize_400(service)
        except InvalidNumber as exc:
            raise RowError(exc.message) from None
        for field, value, limit in (
            ("caller_number", caller, MAX_PHONE),
            ("answer_number", answer, MAX_PHONE),
        ):
            if len(value) > limit or not _PHONE.fullmatch(value):
                raise RowError(
                    _("The %(column)s “%(value)s” is not a phone number.")
                    % {"column": FIELDS[field][0], "value": value}
                )
        if len(area) > MAX_AREA:
            raise RowError(
                _("The caller_area is longer than %(max)d characters.")
                % {"max": MAX_AREA}
            )
        local = parse_start(start)
        if not (duration.isascii() and duration.isdigit()):
            if duration.startswith("-") and duration[1:].strip().isdigit():
                raise RowError(
                    _("The duration %(value)s is negative.") % {"value": duration}
                )
            raise RowError(
                _("The duration “%(value)s” is not a whole number of seconds.")
                % {"value": duration}
            )
        seconds = int(duration)
        if seconds > MAX_DURATION:
            raise RowError(
                _("The duration %(value)s is too long.") % {"value": duration}
            )
        direction_value = DIRECTIONS.get(direction.lower())
        if direction_value is None:
            raise RowError(
                _("Unknown direction “%(value)s”: use inbound/outbound or 呼入/呼出.")
                % {"value": direction}
            )
        status_value = STATUSES.get(status.lower())
        if status_value is None:
            raise RowError(
                _("Unknown result “%(value)s”: use answered/missed or 接通/未接.")
                % {"value": status}
            )
        span = self._span(number, local[:10])
        if self.in_file_duplicates:
            if call_id in self.seen:
                raise RowError(duplicate_in_file_reason(call_id))
            self.seen[call_id] = None
        return (
            call_id,
            self.numbers[number].number_id,
            span.subscription_id,
            span.company_id,
            caller,
            area,
            answer,
            local,
            f"{local[:7]}-01",
            seconds,
            direction_value,
            status_value,
        )

    def _span(self, number: str, day: str) -> SubscriptionSpan:
        key = (number, day)
        span = self._span_cache.get(key)
        if span is not None:
            return span
        info = self.numbers.get(number)
        shown = f"{number[:3]}-{number[3:6]}-{number[6:]}"
        if info is None:
            raise RowError(_("Unknown 400 number %(number)s.") % {"number": shown})
        if (
            self.agent_id is not None
            and info.spans
            and not any(s.agent_id == self.agent_id for s in info.spans)
        ):
            raise RowError(
                _("The 400 number %(number)s is not a number of your companies.")
                % {"number": shown}
            )
        for s in info.spans:
            if s.activated_on <= day and (s.ended_on is None or day <= s.ended_on):
                if self.agent_id is not None and s.agent_id != self.agent_id:
                    raise RowError(
                        _(
                            "On %(date)s the 400 number %(number)s was not a "
                            "number of your companies."
                        )
                        % {"number": shown, "date": day}
                    )
                self._span_cache[key] = s
                return s
        raise RowError(
            _("The 400 number %(number)s was not in service on %(date)s.")
            % {"number": shown, "date": day}
        )
