"""CSV downloads that open correctly in Excel and cannot smuggle formulas.

- UTF-8 with a byte-order mark (BOM): Excel on Windows otherwise guesses the
  legacy code page and turns Chinese into mojibake.
- CRLF line endings and RFC 4180 quoting (the ``csv`` module's ``excel``
  dialect).
- Formula injection (CSV injection): a text cell that starts with ``=``,
  ``+``, ``-``, ``@``, a tab or a carriage return is prefixed with a single
  quote, so a spreadsheet shows it as text instead of evaluating it. Numbers
  (``int``, ``Decimal``) are written as they are: ``-12.50`` stays a number
  that sums in Excel, and a number cannot carry a formula.

``csv_response`` builds a small file in memory; ``csv_streaming_response``
streams rows from an iterator (e.g. ``QuerySet.iterator()``), so a month of
100,000 calls never sits in memory.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterable, Iterator, Sequence
from decimal import Decimal

from django.http import HttpResponse, StreamingHttpResponse

BOM = "\ufeff"
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
CONTENT_TYPE = "text/csv; charset=utf-8"


def csv_cell(value) -> str | int | Decimal:
    """One cell: numbers as they are, text escaped against formula injection."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int | Decimal):
        return value
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    if isinstance(value, dt.date):
        return value.isoformat()
    text = str(value)
    if text.startswith(FORMULA_PREFIXES):
        return "'" + text
    return text


class _Echo:
    """A file-like object whose ``write`` returns what it was given."""

    def write(self, value: str) -> str:
        return value


def csv_lines(header: Sequence, rows: Iterable[Sequence]) -> Iterator[str]:
    """The file as text chunks: BOM + header first, then one chunk per row."""
    writer = csv.writer(_Echo(), dialect="excel")
    yield BOM + writer.writerow([csv_cell(h) for h in header])
    for row in rows:
        yield writer.writerow([csv_cell(v) for v in row])


def _encoded(chunks: Iterable[str], batch: int = 500) -> Iterator[bytes]:
    # Join rows into larger chunks: one socket write per row is slow.
    buffer: list[str] = []
    for chunk in chunks:
        buffer.append(chunk)
        if len(buffer) >= batch:
            yield "".join(buffer).encode("utf-8")
            buffer = []
    if buffer:
        yield "".join(buffer).encode("utf-8")


def csv_bytes(header: Sequence, rows: Iterable[Sequence]) -> bytes:
    """The whole file as bytes (UTF-8 with BOM)."""
    return b"".join(_encoded(csv_lines(header, rows)))


def _disposition(filename: str) -> str:
    # ASCII file names only: every browser and Excel agree on them.
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in filename)
    return f'attachment; filename="{safe}"'


def csv_response(filename: str, header: Sequence, rows: Iterable[Sequence]):
    response = HttpResponse(csv_bytes(header, rows), content_type=CONTENT_TYPE)
    response["Content-Disposition"] = _disposition(filename)
    return response


def csv_streaming_response(
    filename: str, header: Sequence, rows: Iterable[Sequence]
) -> StreamingHttpResponse:
    response = StreamingHttpResponse(
        _encoded(csv_lines(header, rows)), content_type=CONTENT_TYPE
    )
    response["Content-Disposition"] = _disposition(filename)
    return response
