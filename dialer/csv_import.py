"""Finished calls as text: a CSV export of the contact center's call log, or CLI options.

Turns text into `CallEnded` values (with the CSV line each came from) and hands them to
dialer.intake in chunks. Every decision about a call (is the number callable, is it a
duplicate, may it be surveyed) is intake's; this module only decides whether a row is
readable at all, so that one bad row is reported with its line number and never stops
the rest of the file.

What the file must look like: UTF-8 (with or without a byte order mark), a header row,
the columns `phone`, `source_call_id` and `ended_at` (ISO 8601 with a UTC offset),
optionally `agent`, `queue`, `team`, `language`, `survey` and `survey_channel` (voice or
sms; empty: the survey's own); any other column is kept as the request's metadata. Not
`channel`: a call log's own `channel` column (voice, chat, email) is metadata, as before.
"""

from __future__ import annotations

import codecs
import csv
import io
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from core.models import Channel
from core.runtime import Runtime
from dialer.intake import (
    CallEnded,
    IntakeRejected,
    IntakeResult,
    Rejection,
    accept_calls,
    check_text,
    parse_ended_at,
)

REQUIRED_COLUMNS = ("phone", "source_call_id", "ended_at")
OPTIONAL_COLUMNS = ("agent", "queue", "team", "language", "survey", "survey_channel")
# What a row may ask for; the SMS fallback is the dialer's to decide.
TEXT_CHANNELS = {Channel.VOICE.value: Channel.VOICE, Channel.SMS.value: Channel.SMS}
# Rows per accept_calls call: one transaction each, so a huge file neither holds one
# transaction open for minutes nor commits row by row.
CHUNK_ROWS = 1000


class CsvFileError(Exception):
    """The file as a whole cannot be imported (unreadable, not UTF-8, no usable header)."""


def call_from_text(fields: Mapping[str, str], metadata: Mapping[str, str]) -> CallEnded:
    """A `CallEnded` from text fields (CSV cells, CLI options); empty means not given."""

    def optional(name: str) -> str | None:
        value = check_text(fields.get(name, "") or "", name).strip()
        return value or None

    for name in REQUIRED_COLUMNS:
        if not optional(name):
            raise IntakeRejected(Rejection.INVALID_FIELD, f"{name} is missing")
    for key, value in metadata.items():
        check_text(key, "a metadata key")
        check_text(value, f"metadata {key!r}")
    channel = optional("survey_channel")
    if channel is not None and channel.lower() not in TEXT_CHANNELS:
        raise IntakeRejected(Rejection.INVALID_FIELD, "survey_channel must be voice or sms")
    return CallEnded(
        phone=fields["phone"].strip(),
        source_call_id=fields["source_call_id"].strip(),
        ended_at=parse_ended_at(fields["ended_at"]),
        agent=optional("agent"),
        queue=optional("queue"),
        team=optional("team"),
        language=optional("language") or "en",
        survey=optional("survey"),
        metadata=dict(metadata),
        channel=TEXT_CHANNELS[channel.lower()] if channel else None,
    )


@dataclass(frozen=True)
class CsvRow:
    """One data row: the call it describes, or why it could not be read."""

    line: int  # the physical line the row starts on (the header is line 1)
    call: CallEnded | None = None
    unreadable: IntakeResult | None = None


@dataclass(frozen=True)
class RowResult:
    line: int
    result: IntakeResult


# Rejected rows an ImportReport keeps to list; the rest are counted by reason (and can
# be written out in full as they come: import_calls' `on_rejected`).
LISTED_REJECTIONS = 1000


@dataclass
class ImportReport:
    """What became of a file's rows: counts by outcome, and the first LISTED_REJECTIONS
    rows that were not accepted, so that a file of millions of rows (a sampled survey
    rejects most as not_sampled) takes no more memory than a small one."""

    total: int = 0
    accepted: int = 0
    rejections: Counter[str] = field(default_factory=Counter)
    rejected_rows: list[RowResult] = field(default_factory=list)

    @property
    def unlisted(self) -> int:
        """Rejected rows counted but not kept in rejected_rows."""
        return self.total - self.accepted - len(self.rejected_rows)

    def add(self, row: RowResult) -> None:
        self.total += 1
        if row.result.accepted:
            self.accepted += 1
            return
        self.rejections[row.result.reason or ""] += 1
        if len(self.rejected_rows) < LISTED_REJECTIONS:
            self.rejected_rows.append(row)


class CallsFile:
    """A CSV file of finished calls, read as a stream of rows.

    Opening it reads the file once without keeping it (the header, UTF-8 throughout,
    and how many data rows there are, for a progress bar), so that a file that cannot be
    imported as a whole is refused before any row is; iterating reads it again, a row
    at a time, so a file of a million rows takes the memory of a few.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows = _count_rows(path)

    def __len__(self) -> int:
        return self.rows

    def __iter__(self) -> Iterator[CsvRow]:
        with self.path.open(encoding="utf-8-sig", newline="") as handle:
            yield from parse_calls(handle)


def read_calls_file(path: Path) -> CallsFile:
    """The CSV file at `path`, checked; CsvFileError if the file is unusable."""
    return CallsFile(path)


def _count_rows(path: Path) -> int:
    """Data rows that are not blank, after checking the header and that every byte is
    UTF-8 (an incremental decoder, a megabyte at a time)."""
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    offset = 0
    try:
        with path.open("rb") as handle:
            while block := handle.read(1 << 20):
                try:
                    decoder.decode(block)
                except UnicodeDecodeError as exc:
                    raise _not_utf8(path, offset + exc.start) from None
                offset += len(block)
            try:
                decoder.decode(b"", final=True)
            except UnicodeDecodeError as exc:
                raise _not_utf8(path, offset + exc.start) from None
        with path.open(encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle)
            _header(reader)
            rows = 0
            while True:
                try:
                    cells = next(reader)
                except StopIteration:
                    return rows
                except csv.Error:
                    rows += 1  # reported as unreadable when imported
                    continue
                if any(cell.strip() for cell in cells):
                    rows += 1
    except OSError as exc:
        raise CsvFileError(f"cannot read {path}: {exc.strerror or exc}") from None


def _not_utf8(path: Path, offset: int) -> CsvFileError:
    """The error for a file with a byte at `offset` that is not UTF-8: one wording, whether
    a block or the file's end gave it away."""
    return CsvFileError(f"{path} is not UTF-8 text (invalid byte at offset {offset})")


def parse_calls(text: str | Iterable[str]) -> Iterator[CsvRow]:
    """The data rows of CSV `text` (a string, or lines such as an open file). Raises
    CsvFileError (before any row) for a bad header."""
    lines = io.StringIO(text, newline="") if isinstance(text, str) else text
    reader = csv.reader(lines)
    header = _header(reader)
    metadata_columns = [
        (index, name)
        for index, name in enumerate(header)
        if name and name not in REQUIRED_COLUMNS and name not in OPTIONAL_COLUMNS
    ]
    while True:
        line = reader.line_num + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield _unreadable(line, None, f"not a valid CSV row ({exc})")
            continue
        if not any(cell.strip() for cell in cells):
            continue  # blank lines and rows of empty cells
        named = dict(zip(header, cells, strict=False))
        source_call_id = (named.get("source_call_id") or "").strip() or None
        if len(cells) != len(header):
            detail = f"expected {len(header)} columns, found {len(cells)}"
            yield _unreadable(line, source_call_id, detail)
            continue
        metadata = {name: cells[index] for index, name in metadata_columns if cells[index]}
        try:
            yield CsvRow(line, call=call_from_text(named, metadata))
        except IntakeRejected as exc:
            yield _unreadable(line, source_call_id, exc.detail, exc.reason.value)


def import_calls(
    runtime: Runtime,
    rows: Iterable[CsvRow],
    *,
    chunk_rows: int = CHUNK_ROWS,
    progress: Callable[[int], object] | None = None,
    on_rejected: Callable[[RowResult], object] | None = None,
) -> ImportReport:
    """Hand readable rows to intake `chunk_rows` at a time; report every row's fate
    (`on_rejected` sees every row that was not accepted, as it is decided).

    Each chunk is committed on its own, so an interrupted import keeps what it stored;
    importing the file again is safe, because stored calls come back as duplicates.
    """
    report = ImportReport()
    for chunk in _chunks(rows, chunk_rows):
        calls = [row.call for row in chunk if row.call is not None]
        decided = iter(accept_calls(runtime, calls) if calls else [])
        for row in chunk:
            result = row.unreadable if row.call is None else next(decided)
            report.add(RowResult(row.line, result))
            if on_rejected is not None and not result.accepted:
                on_rejected(RowResult(row.line, result))
        if progress is not None:
            progress(len(chunk))
    return report


def _header(reader: Iterator[list[str]]) -> list[str]:
    try:
        header = next(reader)
    except StopIteration:
        raise CsvFileError("the file is empty; a header row is required") from None
    except csv.Error as exc:
        raise CsvFileError(f"the header row is not valid CSV ({exc})") from None
    # Known columns match whatever their case; other names are metadata keys, kept as written.
    known = {*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS}
    names = [name.strip() for name in header]
    names = [name.lower() if name.lower() in known else name for name in names]
    missing = [name for name in REQUIRED_COLUMNS if name not in names]
    if missing:
        raise CsvFileError(
            "missing required column(s): "
            + ", ".join(missing)
            + f" (the header row is line 1; it has: {', '.join(names) or 'nothing'})"
        )
    repeated = sorted(name for name, count in Counter(names).items() if name and count > 1)
    if repeated:
        raise CsvFileError(f"column(s) named more than once: {', '.join(repeated)}")
    return names


def _unreadable(
    line: int, source_call_id: str | None, detail: str, reason: str = Rejection.INVALID_FIELD.value
) -> CsvRow:
    result = IntakeResult(source_call_id or "", reason=reason, detail=detail)
    return CsvRow(line, unreadable=result)


def _chunks(rows: Iterable[CsvRow], size: int) -> Iterator[list[CsvRow]]:
    chunk: list[CsvRow] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
