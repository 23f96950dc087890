"""Shard plans: which stretch of which input file each shard embeds.

The driver reads every record once (the checks of single-process `embed`: valid records, ids
unique across every file, file:line errors before any work), then cuts each file into runs of
`rows` records. A shard is a `Span` of lines (rows, for Parquet) that nestvec's reader reads
alone, so a worker parses exactly what the whole-file reader would, with the same ids.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from nestvec.errors import InputError, InputFileError
from nestvec.io.readers import FORMATS, RecordReader, Span
from nestvec.store.validate import as_document


@dataclass(frozen=True)
class ReadOptions:
    """How records are read: the same options as `nestvec embed`'s."""

    id_field: str | None = "id"
    text_fields: tuple[str, ...] = ("text",)
    skip_empty: bool = False

    def reader(self, path: Path, span: Span | None = None, types: dict[str, str] | None = None) -> RecordReader:
        return RecordReader(
            path, id_field=self.id_field, text_fields=self.text_fields, skip_empty=self.skip_empty, span=span,
            types=types,
        )  # fmt: skip


@dataclass(frozen=True)
class Shard:
    index: int
    path: str
    first: int
    last: int
    offset: int
    rows: int
    chars: int = 0  # the shard's text length: its cost, for scheduling the longest first
    types: dict[str, str] | None = None  # the file's CSV column types, inferred once by the planner

    @property
    def name(self) -> str:
        return f"shard-{self.index:06d}.parquet"

    @property
    def span(self) -> Span:
        return Span(self.first, self.last, self.offset)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Shard:
        return cls(**json.loads(text))


@dataclass(frozen=True)
class ShardPlan:
    shards: list[Shard]
    fingerprint: str  # of the inputs (path, size, mtime), the read options and the shard size

    @property
    def rows(self) -> int:
        return sum(s.rows for s in self.shards)


def input_files(inputs: Sequence[str | Path]) -> list[Path]:
    """Files, and the readable files inside folders (sorted), in the order given."""
    found: list[Path] = []
    for item in inputs:
        path = Path(item).expanduser().resolve()
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in FORMATS)
        elif path.is_file():
            found.append(path)
        else:
            raise InputFileError(path, None, "no such file or folder.")
    if not found:
        raise InputError(f"No input files ({', '.join(FORMATS)}) in {[str(i) for i in inputs]}.")
    return found


def plan_shards(files: Sequence[Path], options: ReadOptions, *, rows: int) -> ShardPlan:
    """Check every record of `files` and cut them into shards of `rows` records."""
    if rows < 1:
        raise InputError(f"Shards hold at least one record; got {rows} rows per shard.")
    seen: dict[str, tuple[Path, int]] = {}
    shards: list[Shard] = []
    for path in files:
        ends, sizes, types = _record_ends(path, options, seen)
        starts = range(0, len(ends), rows)
        firsts = [ends[i - 1] + 1 if i else 1 for i in starts]  # a shard starts where its predecessor ended
        offsets = _line_offsets(path, set(firsts)) if RecordReader(path).format != "parquet" else {}
        for i, first in zip(starts, firsts, strict=True):
            stop = min(i + rows, len(ends))
            last, chars = ends[stop - 1], sum(sizes[i:stop])
            shards.append(Shard(len(shards), str(path), first, last, offsets.get(first, 0), stop - i, chars, types))
    return ShardPlan(shards, _fingerprint(files, options, rows))


def _record_ends(
    path: Path, options: ReadOptions, seen: dict[str, tuple[Path, int]]
) -> tuple[list[int], list[int], dict[str, str]]:
    """The line (row) each record ends on and its text's length, every record checked as a collection
    would, and the file's CSV column types."""
    ends: list[int] = []
    sizes: list[int] = []
    reader = options.reader(path)
    for record in reader:
        try:
            as_document(record.document())
        except InputError as exc:
            raise InputFileError(path, record.line, str(exc)) from None
        if record.id in seen:
            where, line = seen[record.id]
            raise InputFileError(
                path, record.line, f"id {record.id!r} repeats the id of {where}:{line}; ids must be unique."
            )
        seen[record.id] = (path, record.line)
        ends.append(record.line)
        sizes.append(len(record.text))
    return ends, sizes, reader.metadata_types()


def _line_offsets(path: Path, wanted: set[int]) -> dict[int, int]:
    """The byte offset where each wanted line starts."""
    found: dict[int, int] = {}
    with path.open("rb") as fh:
        number, offset = 1, 0
        for raw in fh:
            if number in wanted:
                found[number] = offset
            number, offset = number + 1, offset + len(raw)
    return found


def _fingerprint(files: Sequence[Path], options: ReadOptions, rows: int) -> str:
    stats = [(str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files]
    text = json.dumps({"files": stats, "read": asdict(options), "rows": rows}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()
