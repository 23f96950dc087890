"""Streaming readers for document files: .jsonl, .csv, .tsv, .txt and .parquet.

Every reader yields `Record`s one at a time (bounded memory) and reports a malformed record
with the file and line (row, for parquet) where it sits. A `Span` reads one stretch of a file
(a shard of a distributed job) with the same parsing, line numbers and ids as the whole file.
"""

from __future__ import annotations

import csv
import json
import numbers
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nestvec.errors import InputFileError, MissingExtraError
from nestvec.io.csv_types import column_types, typed
from nestvec.limits import MAX_RECORD_BYTES
from nestvec.registry import unknown_name_message
from nestvec.store.types import Document

FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".tsv": "tsv", ".txt": "txt", ".parquet": "parquet"}


@dataclass(frozen=True)
class Record:
    id: str
    text: str
    metadata: dict[str, Any]
    line: int

    def document(self) -> Document:
        return Document(self.id, self.text, self.metadata)


@dataclass(frozen=True)
class Span:
    """Lines `first`–`last` of a file (1-based, inclusive; rows for Parquet), the first at byte `offset`."""

    first: int
    last: int
    offset: int = 0


@dataclass
class RecordReader:
    """Iterate a file's records. `id_field=None` numbers records by line; `skipped` counts empty texts."""

    path: Path
    id_field: str | None = "id"
    text_fields: tuple[str, ...] = ("text",)
    skip_empty: bool = False
    format: str | None = None
    span: Span | None = None  # only these lines (rows), when set
    types: dict[str, str] | None = None  # CSV/TSV metadata column types; None: inferred from the whole file
    skipped: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        if not self.path.is_file():
            raise InputFileError(self.path, None, "no such file.")
        if self.format is None:
            suffix = self.path.suffix.lower()
            if suffix not in FORMATS:
                raise InputFileError(self.path, None, unknown_name_message("file extension", suffix, list(FORMATS)))
            self.format = FORMATS[suffix]
        elif self.format not in set(FORMATS.values()):
            raise InputFileError(
                self.path, None, unknown_name_message("format", self.format, sorted(set(FORMATS.values())))
            )
        if self.format == "txt":
            self.id_field = None  # a line has no id of its own: its line number is the id

    def __iter__(self) -> Iterator[Record]:
        self.skipped = 0
        rows = {"jsonl": self._jsonl, "csv": self._csv, "tsv": self._csv, "txt": self._txt, "parquet": self._parquet}
        for line, row in rows[str(self.format)]():
            record = self._record(line, row)
            if record is not None:
                yield record

    def _record(self, line: int, row: dict[str, Any]) -> Record | None:
        text = "\n".join(self._text(line, row, f) for f in self.text_fields)
        if not text.strip():
            if self.skip_empty:
                self.skipped += 1
                return None
            raise InputFileError(
                self.path,
                line,
                "empty or whitespace-only text. Fix the record, or pass --skip-empty to skip such records.",
            )
        if self.id_field is None:
            doc_id = str(line)
        elif row.get(self.id_field) in (None, ""):
            raise InputFileError(
                self.path,
                line,
                f"missing id field {self.id_field!r}. "
                "Choose it with --id-field, or use --no-id to number records by line.",
            )
        else:
            doc_id = self._id(line, row[self.id_field])
        used = {self.id_field, *self.text_fields}
        return Record(doc_id, text, {k: v for k, v in row.items() if k not in used}, line)

    def _text(self, line: int, row: dict[str, Any], field: str) -> str:
        value = row.get(field)
        if value is None:
            found = f"text field {field!r} is null" if field in row else f"missing text field {field!r}"
            raise InputFileError(
                self.path, line, f"{found} (fields present: {sorted(row)}). Choose it with --text-field."
            )
        if isinstance(value, str):
            return value
        if isinstance(value, numbers.Number) and not isinstance(value, bool):
            return str(value)  # a number in a text column (CSV-born data) is still text to embed
        raise InputFileError(
            self.path, line, f"text field {field!r} holds {_kind(value)}; expected a string. Fix the record."
        )

    def _id(self, line: int, value: Any) -> str:
        # str() of a float, bool or object would make an id nobody can type back (get, delete)
        if isinstance(value, str):
            return value
        if isinstance(value, numbers.Integral) and not isinstance(value, bool):
            return str(int(value))
        raise InputFileError(
            self.path,
            line,
            f"id field {self.id_field!r} holds {_kind(value)}; expected a string or an integer. Fix the record.",
        )

    def _lines(self, *, header: bool = False, whole: bool = False) -> Iterator[tuple[int, str]]:
        """Numbered lines; with a span (unless `whole`), only its lines (after line 1 when `header`)."""
        span = None if whole else self.span
        with self.path.open("rb") as fh:
            number = 0
            if span is not None and span.first > 1:
                if header and (raw := fh.readline(MAX_RECORD_BYTES + 1)):
                    yield 1, self._decoded(1, raw)
                fh.seek(span.offset)
                number = span.first - 1
            while raw := fh.readline(MAX_RECORD_BYTES + 1):
                number += 1
                if span is not None and number > span.last:
                    return
                yield number, self._decoded(number, raw)

    def _decoded(self, number: int, raw: bytes) -> str:
        if len(raw) > MAX_RECORD_BYTES:
            raise InputFileError(
                self.path,
                number,
                f"the line is longer than {MAX_RECORD_BYTES:,} bytes, nestvec's bound on one record "
                "(so that one runaway line cannot exhaust memory). Split the document into several records.",
            )
        try:
            text = raw.decode("utf-8")
            # a byte-order mark (Excel's "CSV UTF-8") is not part of the first header or text
            return text.removeprefix("\ufeff") if number == 1 else text
        except UnicodeDecodeError as exc:
            raise InputFileError(
                self.path,
                number,
                f"invalid UTF-8 at byte {exc.start} of the line ({exc.reason}). Re-encode the file as UTF-8.",
            ) from exc

    def _jsonl(self) -> Iterator[tuple[int, dict[str, Any]]]:
        for number, text in self._lines():
            if not text.strip():
                continue
            try:
                row = json.loads(text)
            except json.JSONDecodeError as exc:
                raise InputFileError(self.path, number, f"not valid JSON ({exc.msg} at column {exc.colno}).") from exc
            if not isinstance(row, dict):
                raise InputFileError(self.path, number, f"expected a JSON object, found {type(row).__name__}.")
            yield number, row

    def _csv(self) -> Iterator[tuple[int, dict[str, Any]]]:
        types = self.metadata_types()
        for number, row in self._csv_rows():
            yield number, typed(row, types)

    def metadata_types(self) -> dict[str, str]:
        """The CSV/TSV metadata columns read as numbers or booleans (csv_types.py), inferred from the
        whole file once; {} for other formats."""
        if self.format in ("csv", "tsv") and self.types is None:
            keep = {self.id_field, *self.text_fields}
            self.types = column_types((row for _, row in self._csv_rows(whole=True)), keep=keep)
        return dict(self.types or {})

    def _csv_rows(self, *, whole: bool = False) -> Iterator[tuple[int, dict[str, str]]]:
        lines = (text for _, text in self._lines(header=True, whole=whole))
        span = None if whole else self.span
        skip = span.first - 2 if span is not None and span.first > 1 else 0  # lines jumped
        csv.field_size_limit(MAX_RECORD_BYTES)  # the default 128 KiB refuses long documents
        reader = csv.DictReader(lines, delimiter="\t" if self.format == "tsv" else ",")
        try:
            self._check_header(reader.fieldnames or [])
            for row in reader:
                if None in row:
                    raise InputFileError(
                        self.path,
                        skip + reader.line_num,
                        f"more fields than the header's {len(reader.fieldnames or [])}.",
                    )
                yield skip + reader.line_num, dict(row)
        except csv.Error as exc:
            raise InputFileError(self.path, skip + reader.line_num, f"malformed CSV ({exc}).") from exc

    def _check_header(self, names: Sequence[str]) -> None:
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise InputFileError(
                self.path, 1, f"the header repeats the column {repeated[0]!r}; every column needs its own name."
            )

    def _txt(self) -> Iterator[tuple[int, dict[str, Any]]]:
        # One document per line; blank lines are separators, not documents, and are skipped.
        for number, text in self._lines():
            text = text.rstrip("\r\n")
            if text.strip():
                yield number, {self.text_fields[0]: text}

    def _parquet(self) -> Iterator[tuple[int, dict[str, Any]]]:
        try:
            import pyarrow.parquet as pq
        except ImportError as exc:
            raise MissingExtraError("pyarrow", "parquet", "Reading .parquet files") from exc
        try:
            reader = pq.ParquetFile(self.path)
        except Exception as exc:  # pyarrow raises ArrowInvalid and friends
            raise InputFileError(self.path, None, f"not a readable Parquet file ({exc}).") from exc
        first, last = (self.span.first, self.span.last) if self.span else (1, reader.metadata.num_rows)
        number = 0
        for group in range(reader.num_row_groups):
            rows = reader.metadata.row_group(group).num_rows
            if number + rows < first or number >= last:  # a row group outside the span is not read
                number += rows
                continue
            for batch in reader.iter_batches(batch_size=1024, row_groups=[group]):
                for row in batch.to_pylist():
                    number += 1
                    if first <= number <= last:
                        yield number, row


def _kind(value: Any) -> str:
    return f"a {type(value).__name__} ({str(value)[:40]!r})"
