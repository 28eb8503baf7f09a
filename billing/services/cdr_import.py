"""Importing carrier CDRs: files (command, admin upload, Celery) and API batches.

Every path validates rows with ``billing.cdr_format`` and ends with the calls
stored and rated; rows that fail are kept as ``CdrImportError`` rows.

PostgreSQL (the fast path, files of any size, bounded memory)
  1. Stream the file and ``COPY`` the valid rows into a temp staging table
     (and the rejected rows into a second one), a chunk at a time, updating
     the import's progress between chunks. A file whose line numbers are
     certain from its rows is read column by column (``billing.cdr_fast``),
     any other row by row; rows not accepted column-wise go through the
     validator one by one. Memory holds a chunk: repeated call ids are
     found by the database in step 2. On the column-wise path, the calls of
     a month that has no partition yet, of numbers with no calls stored in
     it or later, are rated as they are read and copied straight into the
     month's partition-to-be (``cdr_direct``); only the rest is staged.
  2. In one transaction, under an advisory lock that serialises call
     inserts: check that the loaded months can be kept (else read the file
     again, all staged) and build their indexes; reserve the staged and
     loaded call ids in ``billing_callkey`` (dropping stored ones, the
     duplicates, and the later rows of an id the file repeats), rate the
     staged calls, insert them — a month that has no partition yet into a
     table of its own, attached as its partition at the end
     (``billing.partitions``) — move the rejected rows into
     ``CdrImportError`` and store the summary.
  Each row is written once, rated. A subscription's earliest staged month
  with no stored calls (the common case: the month's file) is rated in SQL
  and inserted by the same ``INSERT … SELECT`` (``cdr_import_sql``), with
  the inputs the rating service would load. Every other month goes through
  ``RatingSession`` (late and out-of-order calls, frozen calls of issued
  invoices, term pools that cascade), whose ratings are joined by a second
  insert and whose ``finish`` re-rates what must be.

Other databases (SQLite, the embedded default) and API batches use the
generic path: the same validation, ``bulk_create`` in batches and
``calls_rate_many`` for every affected month.
"""

from __future__ import annotations

import datetime as dt
import functools
import gc
import io
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import pyarrow as pa
from django.db import (
    Error,
    IntegrityError,
    InterfaceError,
    OperationalError,
    connection,
    transaction,
)
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from billing import rating as core
from billing.cdr_fast import (
    COPY_COLUMNS,
    FastReader,
    FastUnavailable,
    PlainLines,
    copy_csv,
    fast_eligible,
)
from billing.cdr_format import (
    FIELD_ORDER,
    CdrFileError,
    CdrReader,
    NumberInfo,
    RowError,
    RowValidator,
    SubscriptionSpan,
    ValidCall,
    duplicate_in_file_reason,
)
from billing.models import CallKey, CallRecord, CdrImport, CdrImportError
from billing.partitions import (
    PARTITION_LOCK,
    MonthLoad,
    index_statements,
    partition_exists,
    partitions_ensure,
)
from billing.services import rating as rating_service
from billing.services.cdr_direct import (
    DirectLoads,
    DirectRedo,
    IndexBuild,
    drop_load_tables,
)
from billing.services.cdr_import_sql import CALL_COLUMNS, SqlRating
from billing.services.rating import (
    IncomingCall,
    IncomingRatings,
    RatingInputs,
    RatingSession,
)
from plans.models import PhoneNumber, Subscription

logger = logging.getLogger(__name__)

# Files above this size are imported by a Celery task from the admin.
ASYNC_THRESHOLD_BYTES = 2 * 1024 * 1024
CHUNK_ROWS = 50_000
# Rows staged between two progress updates on the column-wise path.
FAST_CHUNK_ROWS = 200_000
# Bytes the column-wise reader parses at a time (tests make it small).
FAST_BLOCK_BYTES = 1 << 20
ORM_BATCH = 2_000
# Calls handed to the rating session at once (whole subscription-months).
RATE_BATCH = 20_000
RATING_COLUMNS = "line, band, billable, pool, charged, rate, amount"
MAX_API_BATCH = 10_000
# Serialises call inserts (file imports and API batches): a call_id checked
# as new stays new until the insert commits.
CALL_INSERT_LOCK = 400_400_001
SHANGHAI = core.SHANGHAI


@dataclass
class RowProblem:
    line_number: int
    raw: str
    reason: str
    call_id: str = ""


@dataclass
class Outcome:
    """What became of a batch of rows (the API's answer)."""

    cdr_import: CdrImport
    problems: list[RowProblem] = field(default_factory=list)


def clean_text(text: str) -> str:
    """``text`` safe to store and show: no NUL, no lone surrogates."""
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text


# --- numbers known to the database ---------------------------------------------


class NumberDirectory(dict):
    """Canonical number → NumberInfo for every number that was ever activated.

    Numbers never subscribed are looked up one by one on first sight (rare:
    they are errors) so a large inventory is never loaded.
    """

    # Called before a look-up in the database: the import frees its
    # connection (a COPY may be open on it while the file is read).
    before_query: Callable[[], None] | None = None

    def __missing__(self, key: str) -> NumberInfo | None:
        if self.before_query is not None:
            self.before_query()
        number_id = (
            PhoneNumber.objects.filter(number=key).values_list("id", flat=True).first()
        )
        info = None if number_id is None else NumberInfo(number_id, ())
        self[key] = info
        return info

    def get(self, key, default=None):
        value = self[key]
        return default if value is None else value


def number_directory() -> NumberDirectory:
    spans: dict[int, list[SubscriptionSpan]] = defaultdict(list)
    numbers: dict[int, str] = {}
    rows = (
        Subscription.objects.filter(activated_on__isnull=False)
        .exclude(status=Subscription.Status.CANCELLED)
        .order_by("activated_on", "id")
        .values_list(
            "id",
            "number_id",
            "number__number",
            "company_id",
            "company__agent_id",
            "activated_on",
            "ended_on",
        )
    )
    for sub_id, number_id, number, company_id, agent_id, start, end in rows:
        numbers[number_id] = number
        spans[number_id].append(
            SubscriptionSpan(
                subscription_id=sub_id,
                company_id=company_id,
                agent_id=agent_id,
                activated_on=start.isoformat(),
                ended_on=end.isoformat() if end else None,
            )
        )
    directory = NumberDirectory()
    for number_id, number in numbers.items():
        directory[number] = NumberInfo(number_id, tuple(spans[number_id]))
    return directory


# --- entry points ---------------------------------------------------------------


def cdr_import_create(
    *,
    source: str,
    agent=None,
    created_by=None,
    upload=None,
    original_name: str = "",
) -> CdrImport:
    """A queued import; ``upload`` (an uploaded file) is stored under MEDIA_ROOT."""
    imp = CdrImport(
        source=source,
        agent=agent,
        created_by=created_by,
        original_name=(original_name or getattr(upload, "name", "") or "")[:255],
    )
    if upload is not None:
        imp.total_bytes = upload.size
        imp.file.save(
            f"{timezone.now():%Y%m}/{_safe_name(upload.name)}", upload, save=False
        )
    imp.save()
    return imp


def _safe_name(name: str) -> str:
    stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in Path(name).name)
    return stem[-100:] or "cdrs.csv"


def cdr_import_file(
    *, path: str | Path, agent=None, created_by=None, source=CdrImport.Source.COMMAND
) -> CdrImport:
    """Import a file from the server's disk (the management command)."""
    path = Path(path)
    imp = cdr_import_create(
        source=source, agent=agent, created_by=created_by, original_name=path.name
    )
    with open(path, "rb") as stream:
        return cdr_import_run(cdr_import=imp, stream=stream)


def cdr_import_run(
    *, cdr_import: CdrImport, stream: BinaryIO | None = None, fast: bool | None = None
) -> CdrImport:
    """Run a queued import from ``stream`` or its stored file; returns it updated.

    ``fast`` forces the PostgreSQL path on or off (None: PostgreSQL → fast).
    """
    imp = cdr_import
    if imp.status not in (CdrImport.Status.QUEUED, CdrImport.Status.RUNNING):
        return imp
    if fast is None:
        fast = connection.vendor == "postgresql"
    own = stream is None
    if own:
        if not imp.file:
            return _finish_rejected(imp, _("The uploaded file is missing."))
        stream = imp.file.open("rb")
    try:
        stream.seek(0, io.SEEK_END)
        imp.total_bytes = stream.tell()
        stream.seek(0)
        imp.status = CdrImport.Status.RUNNING
        imp.started_at = timezone.now()
        imp.processed_bytes = 0
        imp.save(
            update_fields=["status", "started_at", "total_bytes", "processed_bytes"]
        )
        # The encoding check reads the whole file: it tells, on the way,
        # whether the file can be read column-wise (cdr_fast.PlainLines).
        plain_lines = PlainLines()
        try:
            reader = CdrReader(stream, watch=plain_lines)
        except CdrFileError as exc:
            return _finish_rejected(imp, exc.message)
        imp.encoding = reader.encoding
        imp.save(update_fields=["encoding"])
        loader = _PgLoader(imp) if fast else _OrmLoader(imp)
        try:
            _stream_rows(imp, reader, loader)
            try:
                loader.finish()
            except DirectRedo as exc:
                # Rare (see cdr_direct): nothing was stored; read the file
                # again, every call the staged way.
                logger.info("CDR import %s: read again, staged (%s)", imp.pk, exc)
                loader.restart(direct=False)
                reader = _reread(reader)
                _stream_rows(imp, reader, loader)
                loader.finish()
        except Exception as exc:
            # Nothing was stored (phase 2 is one transaction); say so, keep
            # the traceback in the log and let the caller show the status.
            logger.exception("CDR import %s failed", imp.pk)
            loader.abandon()
            if isinstance(exc, OperationalError | InterfaceError):
                # The database went away (restart, failover), not the file's
                # fault: left running, so the sweeper runs it again.
                raise
            CdrImport.objects.filter(pk=imp.pk).update(
                status=CdrImport.Status.FAILED,
                message=_("The import failed; nothing was imported. Try again."),
                finished_at=timezone.now(),
            )
        finally:
            reader.detach()
    finally:
        if own:
            stream.close()
    imp.refresh_from_db()
    return imp


@contextmanager
def _collector_paused():
    """No cyclic garbage collection while reading a file.

    Reading creates millions of short-lived lists and tuples and no
    reference cycles: reference counting frees them, and the collector,
    triggered every few hundred allocations, would only walk the live
    objects again and again (a third of the reading time of a large file).
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _stream_rows(imp: CdrImport, reader: CdrReader, loader) -> None:
    with _collector_paused():
        _read_rows(imp, reader, loader)


def _raw_rows(stream: BinaryIO, encoding: str, lines: set[int]) -> dict[int, str]:
    """The rows at ``lines`` of the file, as received (a second read)."""
    wanted = set(lines)
    found: dict[int, str] = {}
    stream.seek(0)
    reader = CdrReader(stream, encoding=encoding)
    try:
        for line, fields in reader.rows():
            if line in wanted:
                found[line] = reader.raw(fields)
                if len(found) == len(wanted):
                    break
    finally:
        reader.detach()
    return found


def _read_rows(imp: CdrImport, reader: CdrReader, loader) -> None:
    started = time.perf_counter()
    in_database = isinstance(loader, _PgLoader)
    # On PostgreSQL a call id repeated in the file is found by the database
    # (``_PgLoader._reserve_keys``): no set of every id in memory.
    validator = RowValidator(
        number_directory(),
        agent_id=imp.agent_id,
        columns=reader.columns,
        in_file_duplicates=not in_database,
    )
    if in_database:
        loader.raw_rows = functools.partial(_raw_rows, reader.stream, reader.encoding)
        validator.numbers.before_query = loader.release
        if _fast_eligible(reader):
            try:
                rows = _read_columns(reader, validator, loader)
            except FastUnavailable:
                # A file the fast path cannot vouch for (see cdr_fast): read
                # it again row by row (nothing is stored before phase 2).
                loader.restart()
                validator = RowValidator(
                    validator.numbers,
                    agent_id=imp.agent_id,
                    columns=reader.columns,
                    in_file_duplicates=False,
                )
            else:
                _log_reading(imp, rows, started, "column-wise")
                return
            again = _reread(reader)
            try:
                _read_row_by_row(imp, again, validator, loader, started)
            finally:
                again.detach()
            return
    _read_row_by_row(imp, reader, validator, loader, started)


def _read_row_by_row(
    imp: CdrImport, reader: CdrReader, validator: RowValidator, loader, started
) -> None:
    rows = 0
    pending = 0
    validate = validator.validate
    add = loader.add
    for line, fields in reader.rows():
        rows += 1
        try:
            call = validate(fields)
        except RowError as exc:
            loader.reject(line, reader.raw(fields), exc.reason)
            continue
        add(line, call)
        pending += 1
        if pending >= CHUNK_ROWS:
            pending = 0
            loader.flush()
            loader.progress(rows, reader.bytes_read)
    loader.flush()
    loader.progress(rows, imp.total_bytes)
    _log_reading(imp, rows, started, "row by row")


def _fast_eligible(reader: CdrReader) -> bool:
    """``fast_eligible``, leaving the stream where the reader had it (known
    already when the encoding check watched the file)."""
    watch = reader.watch
    if isinstance(watch, PlainLines) and watch.fed:
        return watch.result()
    position = reader.stream.tell()
    try:
        return fast_eligible(reader.stream, reader.encoding)
    finally:
        reader.stream.seek(position)


def _reread(reader: CdrReader) -> CdrReader:
    """A fresh reader of the same file, at its first row."""
    stream, encoding = reader.stream, reader.encoding
    reader.detach()
    stream.seek(0)
    return CdrReader(stream, encoding=encoding)


def _read_columns(reader: CdrReader, validator: RowValidator, loader) -> int:
    """Read the file column by column (``billing.cdr_fast``); the rows it does
    not accept at sight are checked one by one like any other row."""
    fast = FastReader(
        reader.stream,
        encoding=reader.encoding,
        delimiter=reader.delimiter,
        header=reader.header,
        columns=reader.columns,
        validator=validator,
        block_size=FAST_BLOCK_BYTES,
    )
    rows = pending = 0
    validate = validator.validate
    watch = reader.watch  # it counted the lines of the file, if it saw it
    hint = watch.line_ends + 1 if isinstance(watch, PlainLines) and watch.fed else 0
    loader.begin_direct(rows_hint=hint)
    for batch in fast.batches():
        rows += batch.rows
        valid = []
        for line, fields in batch.others:
            try:
                call = validate(fields)
            except RowError as exc:
                loader.reject(line, reader.raw(fields), exc.reason)
                continue
            valid.append((line, call))
        loader.add_batch(batch.calls, valid)
        pending += batch.rows
        if pending >= FAST_CHUNK_ROWS:
            pending = 0
            loader.flush()
            loader.progress(rows, fast.bytes_read)
    loader.flush()
    loader.progress(rows, loader.imp.total_bytes)
    return rows


def _log_reading(imp: CdrImport, rows: int, started: float, how: str) -> None:
    logger.info(
        "CDR import %s: reading, checking and staging %d rows (%s) took %.2f s",
        imp.pk,
        rows,
        how,
        time.perf_counter() - started,
    )


def _summary_message(imported: int, duplicates: int, rejected: int) -> str:
    if imported == 0 and duplicates and not rejected:
        return ngettext(
            "Nothing new: the call was already imported.",
            "Nothing new: all %(count)d calls were already imported.",
            duplicates,
        ) % {"count": duplicates}
    return _(
        "%(imported)d imported, %(duplicates)d duplicates (already stored), "
        "%(rejected)d rejected."
    ) % {"imported": imported, "duplicates": duplicates, "rejected": rejected}


def _finish_rejected(imp: CdrImport, message: str) -> CdrImport:
    imp.status = CdrImport.Status.REJECTED
    imp.message = message
    imp.finished_at = timezone.now()
    imp.save(update_fields=["status", "message", "finished_at"])
    return imp


def _store_summary(
    imp: CdrImport, *, rows: int, imported: int, duplicates: int, rejected: int
) -> None:
    CdrImport.objects.filter(pk=imp.pk).update(
        status=CdrImport.Status.DONE,
        rows_read=rows,
        imported=imported,
        duplicates=duplicates,
        rejected=rejected,
        processed_bytes=imp.total_bytes,
        message=_summary_message(imported, duplicates, rejected),
        finished_at=timezone.now(),
    )


def _lock_call_inserts() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", [CALL_INSERT_LOCK])


# --- the generic path (any database, API batches) ------------------------------


class _OrmLoader:
    """Keeps valid calls in batches and stores them with the ORM at the end."""

    def __init__(self, imp: CdrImport):
        self.imp = imp
        self.calls: list[tuple[int, ValidCall]] = []
        self.problems: list[RowProblem] = []
        self.rows = 0

    def add(self, line: int, call: ValidCall) -> None:
        self.calls.append((line, call))

    def reject(self, line: int, raw: str, reason: str, call_id: str = "") -> None:
        self.problems.append(
            RowProblem(
                line, clean_text(raw), clean_text(reason)[:300], clean_text(call_id)
            )
        )

    def flush(self) -> None:
        pass

    def progress(self, rows: int, done_bytes: int) -> None:
        self.rows = rows
        CdrImport.objects.filter(pk=self.imp.pk).update(
            rows_read=rows, processed_bytes=done_bytes
        )

    def abandon(self) -> None:
        self.calls = []

    @transaction.atomic
    def finish(self) -> tuple[int, int]:
        _lock_call_inserts()
        imp = self.imp
        now = timezone.now()
        imported = duplicates = 0
        keys: set[tuple[int, dt.date]] = set()
        partitions_ensure({dt.date.fromisoformat(c[8]) for _line, c in self.calls})
        for i in range(0, len(self.calls), ORM_BATCH):
            batch = self.calls[i : i + ORM_BATCH]
            ids = [c[0] for _line, c in batch]
            stored = set(
                CallKey.objects.filter(call_id__in=ids).values_list(
                    "call_id", flat=True
                )
            )
            objs = []
            for _line, c in batch:
                if c[0] in stored:
                    duplicates += 1
                    continue
                start = dt.datetime.fromisoformat(c[7]).replace(tzinfo=SHANGHAI)
                period = dt.date.fromisoformat(c[8])
                keys.add((c[2], period))
                objs.append(
                    CallRecord(
                        call_id=c[0],
                        number_id=c[1],
                        subscription_id=c[2],
                        company_id=c[3],
                        caller_number=c[4],
                        caller_area=c[5],
                        answer_number=c[6],
                        start_time=start,
                        period=period,
                        duration_seconds=c[9],
                        direction=c[10],
                        status=c[11],
                        cdr_import=imp,
                        created_at=now,
                    )
                )
            CallRecord.objects.bulk_create(objs)
            imported += len(objs)
        CdrImportError.objects.bulk_create(
            [
                CdrImportError(
                    cdr_import=imp,
                    line_number=p.line_number,
                    raw=p.raw,
                    reason=p.reason,
                )
                for p in self.problems
            ],
            batch_size=ORM_BATCH,
        )
        if keys:
            rating_service.calls_rate_many(keys=sorted(keys, key=lambda k: k[1]))
        _store_summary(
            imp,
            rows=self.rows or (len(self.calls) + len(self.problems)),
            imported=imported,
            duplicates=duplicates,
            rejected=len(self.problems),
        )
        return imported, duplicates


# --- the PostgreSQL path ----------------------------------------------------------

_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_text(value: str) -> str:
    if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
        return value.translate(_ESCAPES)
    return value


class _Clock:
    """Logs how long each phase of an import took (INFO, for tuning)."""

    def __init__(self, pk: int):
        self.pk = pk
        self.last = time.perf_counter()

    def lap(self, what: str) -> None:
        now = time.perf_counter()
        logger.info("CDR import %s: %s took %.2f s", self.pk, what, now - self.last)
        self.last = now


def _temp_buffers() -> None:
    """Keep the staged file in the session's memory (256 MB) rather than
    the 8 MB default, which writes a large stage out to disk and reads it
    back on every pass. PostgreSQL takes this only before the session's
    first temporary table; a session that already had one keeps its size."""
    try:
        with transaction.atomic(), connection.cursor() as cur:
            cur.execute("SET temp_buffers = '256MB'")
    except Error:
        logger.info("temp_buffers stays as it was in this session")


class _PgLoader:
    """Stages rows with COPY, then dedupes, rates and inserts in one transaction."""

    STAGE_COLUMNS = (
        "line, call_id, number_id, subscription_id, company_id, caller_number,"
        " caller_area, answer_number, start_local, period, duration_seconds,"
        " direction, status"
    )

    def __init__(self, imp: CdrImport):
        self.imp = imp
        self.stage = f"cdr_stage_{imp.pk}"
        self.errors = f"cdr_stage_errors_{imp.pk}"
        self.ratings = f"cdr_ratings_{imp.pk}"
        self.lines: list[str] = []
        self.csv_chunks: list[bytes] = []
        self.error_lines: list[str] = []
        self.rows = 0
        self.rejected = 0
        self.loads: dict[dt.date, MonthLoad] = {}
        # The raw rows of some lines of the file (set by the reading loop).
        self.raw_rows: Callable[[set[int]], dict[int, str]] = lambda lines: {}
        # New months' calls rated while reading (cdr_direct), and what phase
        # 2 kept of them.
        self.direct: DirectLoads | None = None
        self.direct_enabled = True
        self.direct_rows = 0
        self.direct_keys: set[tuple[int, dt.date]] = set()
        self.moved = 0  # loaded calls moved to the stage (lines made up)
        self.loaded: dict[dt.date, str] = {}  # month → its load table
        _temp_buffers()
        with connection.cursor() as cur:
            drop_load_tables(cur, imp.pk)  # of a run that was killed
            cur.execute(
                f"CREATE TEMP TABLE {self.stage} ("
                ' line integer, call_id varchar(64) COLLATE "C", number_id bigint,'
                " subscription_id bigint, company_id bigint,"
                " caller_number varchar(32), caller_area varchar(64),"
                " answer_number varchar(32), start_local timestamp, period date,"
                " duration_seconds integer, direction varchar(8), status varchar(8))"
            )
            cur.execute(
                f"CREATE TEMP TABLE {self.errors} (line integer, raw text, reason text)"
            )

    # phase 1: staging -------------------------------------------------------

    def add(self, line: int, c: ValidCall) -> None:
        # Phones are digits and */+/-; only the id and the area may need
        # escaping for COPY's text format (checked inline: this is per row).
        call_id, area = c[0], c[5]
        if "\\" in call_id or "\t" in call_id or "\n" in call_id or "\r" in call_id:
            call_id = call_id.translate(_ESCAPES)
        if area and ("\\" in area or "\t" in area or "\n" in area or "\r" in area):
            area = area.translate(_ESCAPES)
        self.lines.append(
            f"{line}\t{call_id}\t{c[1]}\t{c[2]}\t{c[3]}\t{c[4]}\t"
            f"{area}\t{c[6]}\t{c[7]}\t{c[8]}\t{c[9]}\t{c[10]}\t{c[11]}\n"
        )

    def reject(self, line: int, raw: str, reason: str, call_id: str = "") -> None:
        self.rejected += 1
        raw, reason = clean_text(raw), clean_text(reason)[:300]
        self.error_lines.append(f"{line}\t{_copy_text(raw)}\t{_copy_text(reason)}\n")
        if len(self.error_lines) >= CHUNK_ROWS:
            self._copy(self.errors, "line, raw, reason", self.error_lines)
            self.error_lines = []

    def add_csv(self, data: bytes) -> None:
        """Rows checked column-wise (``billing.cdr_fast``), as COPY CSV."""
        if data:
            self.csv_chunks.append(data)

    def begin_direct(self, *, rows_hint: int = 0) -> None:
        """Rate and load new months while reading (``cdr_direct``);
        ``rows_hint``: how many rows the file has at most, if known."""
        if self.direct_enabled and self.direct is None:
            self.direct = DirectLoads(
                import_id=self.imp.pk, now=timezone.now(), rows_hint=rows_hint
            )

    def add_batch(self, calls, valid: list[tuple[int, ValidCall]]) -> None:
        """A block of the column-wise read: the rows accepted column-wise
        (Arrow, ``FastBatch.calls``) and the others that ``validate`` passed."""
        if self.direct is None:
            if calls is not None:
                self.add_csv(copy_csv(calls))
            for line, call in valid:
                self.add(line, call)
            return
        if valid:
            extra = _arrow_calls(valid)
            calls = extra if calls is None else pa.concat_batches([calls, extra])
        if calls is None:
            return
        rest, outside = self.direct.take(calls)
        if rest is not None:
            self.add_csv(copy_csv(rest))
        reason = _outside_reason()
        for line, call_id, start in outside:
            self.reject(line, f"{call_id} {start}", reason)

    def release(self) -> None:
        """Free the connection of the direct load's open COPY."""
        if self.direct is not None:
            self.direct.close()

    def flush(self) -> None:
        self.release()
        if self.lines:
            self._copy(self.stage, self.STAGE_COLUMNS, self.lines)
            self.lines = []
        if self.csv_chunks:
            with (
                connection.cursor() as cur,
                cur.copy(
                    f"COPY {self.stage} ({self.STAGE_COLUMNS}) FROM STDIN (FORMAT csv)"
                ) as copy,
            ):
                for data in self.csv_chunks:
                    copy.write(data)
            self.csv_chunks = []
        if self.error_lines:
            self._copy(self.errors, "line, raw, reason", self.error_lines)
            self.error_lines = []

    def _copy(self, table: str, columns: str, lines: list[str]) -> None:
        self.release()
        with (
            connection.cursor() as cur,
            cur.copy(f"COPY {table} ({columns}) FROM STDIN") as copy,
        ):
            copy.write("".join(lines).encode("utf-8"))

    def progress(self, rows: int, done_bytes: int) -> None:
        self.release()
        self.rows = rows
        CdrImport.objects.filter(pk=self.imp.pk).update(
            rows_read=rows, processed_bytes=min(done_bytes, self.imp.total_bytes)
        )

    def abandon(self) -> None:
        self.lines = []
        self.csv_chunks = []
        self.error_lines = []
        if self.direct is not None:
            self.direct.abandon()
        self._drop()

    def restart(self, *, direct: bool = True) -> None:
        """Forget what was staged and loaded (the file is read again another
        way; ``direct=False``: every call the staged way)."""
        self.release()
        self.lines, self.csv_chunks, self.error_lines = [], [], []
        self.rows = self.rejected = 0
        self.direct, self.direct_enabled = None, direct
        self.direct_rows, self.direct_keys, self.moved = 0, set(), 0
        self.loads, self.loaded = {}, {}
        with connection.cursor() as cur:
            cur.execute(f"TRUNCATE {self.stage}, {self.errors}")
            drop_load_tables(cur, self.imp.pk)

    def _drop(self) -> None:
        try:
            with connection.cursor() as cur:
                cur.execute(
                    f"DROP TABLE IF EXISTS {self.stage}, {self.errors}, {self.ratings}"
                )
                drop_load_tables(cur, self.imp.pk)
        except Exception:  # the transaction is broken: the session drops them
            logger.warning(
                "could not drop the staging tables of import %s", self.imp.pk
            )

    # phase 2: dedupe, rate, insert ------------------------------------------

    def finish(self) -> None:
        clock = _Clock(self.imp.pk)
        redo = False
        try:
            self._finish()
            clock.lap("commit")
        except DirectRedo:
            redo = True  # the tables are needed for the second reading
            raise
        finally:
            if not redo:
                self._drop()

    @transaction.atomic
    def _finish(self) -> None:
        imp = self.imp
        clock = _Clock(imp.pk)
        _lock_call_inserts()
        with connection.cursor() as cur:
            cur.execute("SET LOCAL work_mem = '256MB'")
            cur.execute("SET LOCAL maintenance_work_mem = '512MB'")
            self.loaded = self._settle_direct(cur)
            # The loaded months' indexes: built on a connection of their own
            # while this one reserves the call ids (when the tables were
            # committed while reading), else here, after it.
            builds, keys = [], []
            for period, table in self.loaded.items():
                more_builds, more_keys = index_statements(cur, period, table)
                builds += more_builds
                keys += more_keys
            build = None
            if builds and self.direct.committed and not self.moved:
                build = IndexBuild(builds)
            try:
                cur.execute(f"ANALYZE {self.stage}")
                self._count_months(cur)
                # A month with no partition yet is loaded into a table of its
                # own and attached at the end (billing.partitions).
                self.loads = MonthLoad.begin(
                    cur, {p for _s, p in self.months} - set(self.loaded)
                )
                duplicates = self._reserve_keys(cur)
            finally:
                built = build is not None and build.join()
            # Here if not built there (IF NOT EXISTS: what it built stays).
            for sql in ([] if built else builds) + keys:
                cur.execute(sql)
            for period, table in self.loaded.items():
                self.loads[period] = MonthLoad.adopt(cur, period, table)
        clock.lap("dedupe and call ids")
        sql_rating = self._prepare_sql_rating()
        session = RatingSession()
        result = self._rate(session, sql_rating)
        clock.lap("rate (other months)")
        imported = self._insert(sql_rating, result.rated_at) + self.direct_rows
        clock.lap("rate and insert")
        with connection.cursor() as cur:
            for load in self.loads.values():
                load.attach(cur)
            clock.lap("indexes of the new months")
            cur.execute(
                "INSERT INTO billing_cdrimporterror"  # noqa: S608
                " (cdr_import_id, line_number, raw, reason)"
                f" SELECT %s, line, raw, reason FROM {self.errors} ORDER BY line",
                [imp.pk],
            )
            sql_rating.drop(cur)
        session.finish(result)
        # Every month of the file was rated against the pool as stored before
        # the import. When a file brings several months of one subscription,
        # a later month of a term draws on what the earlier months (now
        # stored) used: re-rate those months, in order, now.
        later = set(self._later_months())
        if later:
            rating_service.calls_rate_many(keys=sorted(later, key=lambda k: k[1]))
        clock.lap("re-rate")
        _store_summary(
            imp,
            rows=self.rows,
            imported=imported,
            duplicates=duplicates,
            rejected=self.rejected,
        )

    def _settle_direct(self, cur) -> dict[dt.date, str]:
        """Keep the calls loaded while reading (``cdr_direct``); returns their
        tables by month (to become loads). Raises DirectRedo when they cannot
        be kept; moves the subscription-months whose calls came out of pool
        order to the stage, to be rated there."""
        direct = self.direct
        if direct is None or not direct.rows:
            return {}
        direct.close()
        cur.execute("SELECT pg_advisory_xact_lock(%s)", [PARTITION_LOCK])
        loaded = direct.loaded
        for period in loaded:
            if partition_exists(cur, period):
                raise DirectRedo(f"the month {period:%Y-%m} was created meanwhile")
        keys = direct.loaded_keys()
        now = rating_service.fresh_month_inputs(keys=keys, lock=True)
        changed = [k for k in keys if now.get(k) != direct.inputs[k]]
        if changed:
            raise DirectRedo(f"the rating inputs of {changed[0]} changed meanwhile")
        unordered = sorted(direct.unordered)
        for table in loaded.values():
            if unordered:
                self._move_to_stage(cur, table, unordered)
        self.direct_keys = set(keys) - set(unordered)
        self.direct_rows = direct.rows - self.moved
        return loaded

    def _move_to_stage(self, cur, table: str, keys: list[tuple[int, dt.date]]) -> None:
        """Move the loaded calls of ``keys`` to the stage, to be rated there.
        Their lines are made up (negative): they are kept only if nothing
        needs a line (see ``_reserve_keys``)."""
        cur.execute(
            f"WITH moved AS (DELETE FROM {table}"  # noqa: S608
            " WHERE (subscription_id, period) IN (SELECT * FROM"
            " unnest(%s::bigint[], %s::date[])) RETURNING *)"
            f" INSERT INTO {self.stage} ({self.STAGE_COLUMNS})"
            " SELECT -(%s + row_number() OVER ()), call_id, number_id,"
            " subscription_id, company_id, caller_number, caller_area,"
            " answer_number, start_time AT TIME ZONE 'Asia/Shanghai', period,"
            " duration_seconds, direction, status FROM moved",
            [[k[0] for k in keys], [k[1] for k in keys], self.moved],
        )
        self.moved += cur.rowcount

    def _count_months(self, cur) -> None:
        cur.execute(
            f"SELECT subscription_id, period, count(*) FROM {self.stage}"  # noqa: S608
            " GROUP BY subscription_id, period"
        )
        counts = cur.fetchall()
        self.months = sorted((sub_id, period) for sub_id, period, _n in counts)
        self.staged = sum(n for _s, _p, n in counts)

    def _reserve_keys(self, cur) -> int:
        """Store the staged call ids in the call-key table; returns how many
        staged calls were duplicates (already stored), which are dropped, as
        are the later rows of a call id that appears twice in the file.

        The common case (no duplicate at all) costs one sorted insert, which
        the call ids need anyway: it fails on the first duplicate, and only
        then are duplicates looked for. The ids of the calls that will go
        through the call table (months that have a partition) are released
        again at once: the table's trigger stores them with the calls.
        """
        loaded = "".join(
            f' UNION ALL SELECT call_id COLLATE "C", period FROM {table}'  # noqa: S608
            for table in self.loaded.values()
        )
        sql = (
            "INSERT INTO billing_callkey (call_id, period)"  # noqa: S608
            f" SELECT call_id, period FROM {self.stage}{loaded} ORDER BY 1"
        )
        if (
            not self.staged
            and not self.moved
            and len(self.loaded) == 1
            and self.direct.ids_in_order(next(iter(self.loaded.values())))
        ):
            # The file's ids came in order: the load table's rows, read in
            # the order they were written, need no sort.
            cur.execute("SET LOCAL synchronize_seqscans = off")
            table = next(iter(self.loaded.values()))
            sql = (
                "INSERT INTO billing_callkey (call_id, period)"  # noqa: S608
                f" SELECT call_id, period FROM {table}"
            )
        duplicates = 0
        try:
            with transaction.atomic():
                cur.execute(sql)
        except IntegrityError:
            if loaded or self.moved:
                # Stored or repeated call ids among loaded calls, which keep
                # no line: the staged path sorts them out.
                raise DirectRedo("call ids already stored or repeated") from None
            cur.execute(
                f"DELETE FROM {self.stage} s USING billing_callkey k"  # noqa: S608
                " WHERE k.call_id = s.call_id"
            )
            duplicates = cur.rowcount
            self._reject_repeated_ids(cur)
            self._count_months(cur)
            cur.execute(sql)
        loads = set(self.loads) | set(self.loaded)
        through_table = sorted({p for _s, p in self.months} - loads)
        if through_table:
            cur.execute(
                f"DELETE FROM billing_callkey k USING {self.stage} s"  # noqa: S608
                " WHERE s.period = ANY(%s) AND k.call_id = s.call_id",
                [through_table],
            )
        return duplicates

    def _reject_repeated_ids(self, cur) -> None:
        """A call id on several valid rows of the file: the first row is the
        call, the later ones are rejected (as the validator does elsewhere)."""
        cur.execute(
            f"DELETE FROM {self.stage} s WHERE EXISTS (SELECT 1"  # noqa: S608
            f" FROM {self.stage} e WHERE e.call_id = s.call_id AND e.line < s.line)"
            " RETURNING line, call_id"
        )
        repeated = sorted(cur.fetchall())
        if not repeated:
            return
        raws = self.raw_rows({line for line, _id in repeated})
        self.rejected += len(repeated)
        cur.executemany(
            f"INSERT INTO {self.errors} (line, raw, reason) VALUES (%s, %s, %s)",  # noqa: S608
            [
                (
                    line,
                    clean_text(raws.get(line, call_id)),
                    clean_text(duplicate_in_file_reason(call_id))[:300],
                )
                for line, call_id in repeated
            ],
        )

    def _all_months(self) -> list[tuple[int, dt.date]]:
        """The subscription-months of the file: staged and loaded."""
        return sorted(set(self.months) | self.direct_keys)

    def _later_months(self) -> list[tuple[int, dt.date]]:
        """Months of the file after each subscription's earliest one."""
        first = self._first_months()
        return [(sub_id, p) for sub_id, p in self._all_months() if p > first[sub_id]]

    def _first_months(self) -> dict[int, dt.date]:
        first: dict[int, dt.date] = {}
        for sub_id, period in self._all_months():  # sorted: the first one wins
            first.setdefault(sub_id, period)
        return first

    def _insert(self, sql_rating: SqlRating, rated_at: dt.datetime) -> int:
        """Insert the staged calls, rated; returns how many were inserted.

        A month being loaded (``self.loads``) goes into its own table, any
        other month into the call table. The months rated in SQL go straight
        from the stage (one ``INSERT … SELECT`` with the rating, in the
        order of the main index); the others join their ratings from the
        session. Duplicates were removed and the call ids reserved under the
        call-insert lock, so a plain INSERT cannot meet a stored call id.
        """
        now = timezone.now()
        staged = {p for _s, p in self.months}
        in_sql = {p for _s, p in sql_rating.keys}
        in_session = {p for sub, p in self.months if (sub, p) not in sql_rating.keys}
        # (table, months it takes, the stage rows of those months)
        targets = [
            (load.table, {period}, "s.period = %(period)s", {"period": period})
            for period, load in self.loads.items()
        ]
        others = staged - set(self.loads)
        if others:
            targets.append(
                (
                    CallRecord._meta.db_table,
                    others,
                    "s.period = ANY(%(periods)s)",
                    {"periods": sorted(others)},
                )
            )
        inserted = 0
        with connection.cursor() as cur:
            for table, months, where, params in targets:
                params = {
                    **params,
                    "rated_at": rated_at,
                    "created_at": now,
                    "import_id": self.imp.pk,
                }
                if months & in_sql:
                    inserted += sql_rating.insert_calls(
                        cur,
                        table=table,
                        rated_at=rated_at,
                        created_at=now,
                        import_id=self.imp.pk,
                        where=where,
                        where_params=params,
                    )
                if not months & in_session:
                    continue
                cur.execute(
                    f"INSERT INTO {table} ({CALL_COLUMNS})"  # noqa: S608
                    " SELECT s.call_id, s.company_id, s.subscription_id, s.number_id,"
                    " s.caller_number, s.caller_area, s.answer_number,"
                    " s.start_local AT TIME ZONE 'Asia/Shanghai', s.period,"
                    " s.duration_seconds, s.direction, s.status,"
                    " coalesce(r.band, ''), coalesce(r.billable, 0),"
                    " coalesce(r.pool, 0), coalesce(r.charged, 0),"
                    " coalesce(r.rate, 0), coalesce(r.amount, 0),"
                    " CASE WHEN r.line IS NULL THEN NULL"
                    " ELSE %(rated_at)s::timestamptz END, %(created_at)s,"
                    f" %(import_id)s FROM {self.stage} s"
                    f" LEFT JOIN {self.ratings} r ON r.line = s.line"
                    f" WHERE {where} AND NOT EXISTS (SELECT 1"
                    f"  FROM {sql_rating.done} d"
                    "  WHERE d.subscription_id = s.subscription_id"
                    "  AND d.period = s.period)"
                    " ORDER BY s.subscription_id, s.period, s.start_local, s.call_id",
                    params,
                )
                inserted += cur.rowcount
        return inserted

    def _prepare_sql_rating(self) -> SqlRating:
        """The months the SQL path rates (see ``cdr_import_sql``).

        Only a subscription's earliest staged month with no stored calls is
        rated there: a later staged month of a term plan draws on a pool the
        earlier staged calls use, which only the generic path accounts for.
        """
        fresh = self._fresh_inputs()
        first = self._first_months()
        segments = {
            key: inputs.segments
            for key, inputs in fresh.items()
            if inputs.segments and first.get(key[0]) == key[1]
        }
        calendar = next(iter(fresh.values())).calendar if fresh else core.Calendar()
        with connection.cursor() as cur:
            return SqlRating.prepare(
                cur,
                stage=self.stage,
                segments=segments,
                calendar=calendar,
                suffix=str(self.imp.pk),
            )

    def _rate(self, session: RatingSession, sql_rating: SqlRating) -> IncomingRatings:
        """Rate the staged calls of the months the SQL path does not rate, a
        batch of whole subscription-months at a time.

        The ratings go to a temp table joined by the insert. Calls the rating
        finds outside the subscription's active days become rejected rows.
        """
        with connection.cursor() as cur:
            cur.execute(
                f"CREATE TEMP TABLE {self.ratings} (line integer, band varchar(8),"
                " billable integer, pool integer, charged integer,"
                " rate numeric(8,4), amount numeric(14,4))"
            )
        total = IncomingRatings(ratings={}, outside=[], rated_at=timezone.now())
        lines: dict[str, int] = {}
        batch: list[IncomingCall] = []
        out: list[str] = []

        def emit(ratings: Iterable[core.CallRating], where: Mapping[str, int]) -> None:
            for r in ratings:
                out.append(
                    f"{where[r.call_id]}\t{r.band}\t{r.billable_minutes}\t"
                    f"{r.pool_minutes}\t{r.charged_minutes}\t{r.rate}\t{r.amount}\n"
                )

        def rate_batch() -> None:
            result = session.rate_incoming(batch)
            total.rerate |= result.rerate
            total.follow.update(result.follow)
            total.outside.extend(result.outside)
            emit(result.ratings.values(), lines)
            batch.clear()
            lines.clear()

        raw = connection.connection
        with raw.cursor(name=f"cdr_rate_{self.imp.pk}") as named:
            named.itersize = 20_000
            named.execute(
                "SELECT line, subscription_id, period, call_id, start_local,"  # noqa: S608
                " duration_seconds, direction, status"
                f" FROM {self.stage} s WHERE NOT EXISTS (SELECT 1"
                f"  FROM {sql_rating.done} d WHERE d.subscription_id ="
                "  s.subscription_id AND d.period = s.period)"
                " ORDER BY subscription_id, period"
            )
            current = None
            for line, sub_id, period, call_id, start, secs, direction, status in named:
                if (sub_id, period) != current:
                    current = (sub_id, period)
                    if len(batch) >= RATE_BATCH:
                        rate_batch()
                    if len(out) >= CHUNK_ROWS:
                        self._copy(self.ratings, RATING_COLUMNS, out)
                        out.clear()
                lines[call_id] = line
                batch.append(
                    IncomingCall(
                        sub_id,
                        core.CallIn(
                            call_id,
                            start.replace(tzinfo=SHANGHAI),
                            secs,
                            direction,
                            status == "answered",
                        ),
                    )
                )
        if batch:
            rate_batch()
        if out:
            self._copy(self.ratings, RATING_COLUMNS, out)
        with connection.cursor() as cur:
            cur.execute(f"CREATE INDEX ON {self.ratings} (line)")
            cur.execute(f"ANALYZE {self.ratings}")
            if total.outside:
                self._reject_outside(cur, total.outside)
        return total

    def _fresh_inputs(self) -> dict[tuple[int, dt.date], RatingInputs]:
        """Rating inputs of the staged months that have no stored calls yet
        (``fresh_month_inputs``), their subscriptions locked."""
        return rating_service.fresh_month_inputs(keys=self.months, lock=True)

    def _reject_outside(self, cur, call_ids: list[str]) -> None:
        cur.execute(
            f"DELETE FROM {self.stage} WHERE call_id = ANY(%s)"  # noqa: S608
            " RETURNING line, call_id, start_local",
            [call_ids],
        )
        gone = cur.fetchall()
        cur.execute("DELETE FROM billing_callkey WHERE call_id = ANY(%s)", [call_ids])
        self.staged -= len(gone)
        self.rejected += len(gone)
        reason = _outside_reason()
        cur.executemany(
            f"INSERT INTO {self.errors} (line, raw, reason) VALUES (%s, %s, %s)",  # noqa: S608
            [(line, f"{call_id} {start}", reason) for line, call_id, start in gone],
        )


def _outside_reason() -> str:
    return _("The 400 number had no package in force on that day.")


def _arrow_calls(valid: list[tuple[int, ValidCall]]) -> pa.RecordBatch:
    """Validated calls as ``FastBatch.calls`` holds them (all text)."""
    lines = pa.array([line for line, _call in valid], pa.int64())
    columns = zip(*(call for _line, call in valid), strict=True)
    return pa.RecordBatch.from_arrays(
        [lines, *(pa.array([str(v) for v in col], pa.string()) for col in columns)],
        names=list(COPY_COLUMNS),
    )


# --- API batches ------------------------------------------------------------------


def cdr_import_batch(
    *, agent, calls: Sequence[Mapping], created_by=None, name: str = ""
) -> Outcome:
    """Import a JSON batch of calls (dicts with the file's English field names).

    Same validation and idempotency as files; a retried batch imports nothing
    twice. Errors carry the 0-based index in the batch and the call_id.
    """
    imp = CdrImport.objects.create(
        source=CdrImport.Source.API,
        agent=agent,
        created_by=created_by,
        original_name=name[:255],
        status=CdrImport.Status.RUNNING,
        started_at=timezone.now(),
        encoding="utf-8",
    )
    validator = RowValidator(number_directory(), agent_id=agent.pk if agent else None)
    loader = _OrmLoader(imp)
    for index, item in enumerate(calls):
        fields = [_api_text(item.get(f)) for f in FIELD_ORDER]
        try:
            call = validator.validate(fields)
        except RowError as exc:
            loader.reject(index + 1, _api_raw(item), exc.reason, fields[0])
            continue
        loader.add(index + 1, call)
    loader.rows = len(calls)
    loader.finish()
    imp.refresh_from_db()
    problems = [
        RowProblem(p.line_number - 1, p.raw, p.reason, p.call_id)
        for p in loader.problems
    ]
    return Outcome(cdr_import=imp, problems=problems)


def _api_text(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _api_raw(item: Mapping) -> str:
    import json

    return json.dumps(item, ensure_ascii=False, default=str)[:10_000]


# --- running an import exactly once at a time (Celery redelivery) ----------------

# Advisory lock namespace of the imports' session locks (key: the import id).
IMPORT_RUN_LOCK = 400_400_002


@contextmanager
def cdr_import_lock(*, import_id: int, wait: float = 30.0):
    """Hold the import's session lock while it runs; yields False if another
    connection still holds it after ``wait`` seconds.

    A session lock dies with its connection, so the lock of a worker that
    was killed frees itself (once PostgreSQL notices the connection is gone,
    hence the wait). Other databases: always True.
    """
    if connection.vendor != "postgresql":
        yield True
        return
    deadline = time.monotonic() + wait
    while not _try_import_lock(import_id):
        if time.monotonic() >= deadline:
            yield False
            return
        time.sleep(0.25)
    try:
        yield True
    finally:
        try:
            with connection.cursor() as cur:
                cur.execute(
                    "SELECT pg_advisory_unlock(%s, %s)", [IMPORT_RUN_LOCK, import_id]
                )
        except Error:  # the connection is gone, and the lock with it
            logger.warning("could not unlock CDR import %s", import_id)


def cdr_import_busy(*, import_id: int) -> bool:
    """Whether a live connection is running the import (holds its lock)."""
    if connection.vendor != "postgresql":
        return False
    if not _try_import_lock(import_id):
        return True
    with connection.cursor() as cur:
        cur.execute("SELECT pg_advisory_unlock(%s, %s)", [IMPORT_RUN_LOCK, import_id])
    return False


def _try_import_lock(import_id: int) -> bool:
    with connection.cursor() as cur:
        cur.execute("SELECT pg_try_advisory_lock(%s, %s)", [IMPORT_RUN_LOCK, import_id])
        return cur.fetchone()[0]
