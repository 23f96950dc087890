"""Streaming readers for document files: .jsonl, .csv, .tsv, .txt and .parquet.

Every reader yields `Record`s one at a time (bounded memory) and reports a malformed record
with the file and line (row, for parquet) where it sits.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nestvec.errors import InputFileError, MissingExtraError
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


@dataclass
class RecordReader:
    """Iterate a file's records. `id_field=None` numbers records by line; `skipped` counts empty texts."""

    path: Path
    id_field: str | None = "id"
    text_fields: tuple[str, ...] = ("text",)
    skip_empty: bool = False
    format: str | None = None
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
        missing = [f for f in self.text_fields if row.get(f) is None]
        if missing:
            raise InputFileError(
                self.path,
                line,
                f"missing text field {missing[0]!r} (fields present: {sorted(row)}). Choose it with --text-field.",
            )
        text = "\n".join(str(row[f]) for f in self.text_fields)
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
            doc_id = str(row[self.id_field])
        used = {self.id_field, *self.text_fields}
        return Record(doc_id, text, {k: v for k, v in row.items() if k not in used}, line)

    def _lines(self) -> Iterator[tuple[int, str]]:
        with self.path.open("rb") as fh:
            number = 0
            while raw := fh.readline(MAX_RECORD_BYTES + 1):
                number += 1
                if len(raw) > MAX_RECORD_BYTES:
                    raise InputFileError(
                        self.path,
                        number,
                        f"the line is longer than {MAX_RECORD_BYTES:,} bytes, nestvec's bound on one record "
                        "(so that one runaway line cannot exhaust memory). Split the document into several records.",
                    )
                try:
                    yield number, raw.decode("utf-8")
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
        lines = (text for _, text in self._lines())
        csv.field_size_limit(MAX_RECORD_BYTES)  # the default 128 KiB refuses long documents
        reader = csv.DictReader(lines, delimiter="\t" if self.format == "tsv" else ",")
        try:
            for row in reader:
                if None in row:
                    raise InputFileError(
                        self.path, reader.line_num, f"more fields than the header's {len(reader.fieldnames or [])}."
                    )
                yield reader.line_num, dict(row)
        except csv.Error as exc:
            raise InputFileError(self.path, reader.line_num, f"malformed CSV ({exc}).") from exc

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
        number = 0
        for batch in reader.iter_batches(batch_size=1024):
            for row in batch.to_pylist():
                number += 1
                yield number, row
