"""File-level jobs shared by the CLI and the server: embed a file, build or extend a collection."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from nestvec.batching import batched
from nestvec.encoders import Encoder
from nestvec.encoders.base import progress_bar
from nestvec.errors import DuplicateIdError, InputError, InputFileError, MissingExtraError
from nestvec.files import check_creatable, fsync_dir
from nestvec.io.readers import RecordReader
from nestvec.io.vector_files import VectorFile
from nestvec.store.collection import Collection
from nestvec.store.types import AddReport, Document
from nestvec.store.validate import as_document

OUTPUT_FORMATS = (".npy", ".parquet")


@dataclass(frozen=True)
class EmbedReport:
    path: str
    rows: int
    dim: int
    skipped: int
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def scan(reader: RecordReader) -> dict[str, int]:
    """Validate every record (and id uniqueness) before any work; returns each id's line, in file order."""
    first_line: dict[str, int] = {}
    for record in reader:
        try:
            as_document(record.document())  # what the collection checks per batch, for the whole file first
        except InputError as exc:
            raise InputFileError(reader.path, record.line, str(exc)) from None
        if record.id in first_line:
            raise InputFileError(
                reader.path,
                record.line,
                f"id {record.id!r} repeats the id of line {first_line[record.id]}; ids must be unique.",
            )
        first_line[record.id] = record.line
    return first_line


def add_file(
    collection: Collection,
    reader: RecordReader,
    *,
    upsert: bool = False,
    skip_existing: bool = False,
    vectors: Path | None = None,
    batch_size: int = 256,
    progress: bool | None = None,
    scanned: dict[str, int] | None = None,
) -> AddReport:
    """Add a file's records; the whole file is validated first, then written batch by batch.

    `skip_existing` leaves records whose id is already stored alone (counted as skipped): an add
    that was interrupted continues where it stopped. `scanned` is what `scan(reader)` returned,
    when the caller has already validated the file. `vectors`: the records' vectors made elsewhere
    by the collection's model (io/vector_files.py); the model does not run.
    """
    if upsert and skip_existing:
        raise InputError("Choose one: --upsert replaces stored ids, --skip-existing leaves them alone.")
    lines = scan(reader) if scanned is None else scanned
    total = len(lines)
    stored = _stored(collection, lines) if skip_existing else set()
    if not upsert and not skip_existing:
        _refuse_existing(collection, reader.path, lines)
    given = VectorFile(vectors, list(lines)) if vectors is not None else None
    report = AddReport()
    write = collection.upsert if upsert else collection.add
    with progress_bar(total, progress, unit="doc") as bar:

        def documents() -> Iterator[Document]:
            for record in reader:
                bar.update(1)
                if record.id not in stored:
                    yield record.document()

        if given is None:
            report.merge(write(documents(), batch_size=batch_size, progress=False))
        else:
            for batch in batched(documents(), batch_size):
                report.merge(write(batch, vectors=given.rows([d.id for d in batch])))
    report.skipped = reader.skipped + len(stored)
    return report


def _stored(collection: Collection, lines: dict[str, int]) -> set[str]:
    return {i for batch in batched(lines, 2048) for i in collection.existing(batch)}


def _refuse_existing(collection: Collection, path: Path, lines: dict[str, int]) -> None:
    # The ids come from the scan, so the file is not read a third time.
    for batch in batched(lines, 2048):
        found = collection.existing(batch)
        if found:
            line = next(lines[i] for i in batch if i in found)
            raise DuplicateIdError(
                f"{path}:{line}: {len(found)}+ id(s) already stored, e.g. {sorted(found)[0]!r}. "
                "Use upsert (--upsert) to replace them, or --skip-existing to leave them; nothing was written."
            )


def build_collection(
    reader: RecordReader,
    path: str | Path,
    *,
    model: str | Encoder,
    batch_size: int = 256,
    progress: bool | None = None,
    **options: Any,
) -> AddReport:
    """Create a collection from a file; the folder appears only once every record is stored.

    `options` go to Collection.create: a `recipe` and/or recipe fields by name.
    """
    target = new_collection_path(path)
    scanned = scan(reader)  # fail on bad input before the model loads
    with building(target) as tmp, Collection.create(tmp, model=model, **options) as collection:
        return add_file(collection, reader, batch_size=batch_size, progress=progress, scanned=scanned)


def new_collection_path(path: str | Path) -> Path:
    target = Path(path).expanduser().resolve()
    if target.exists():
        raise InputError(f"{target} already exists. Add to it with `nestvec add`, or choose a new path.")
    check_creatable(target)
    return target


@contextmanager
def building(target: Path) -> Iterator[Path]:
    """A folder beside `target`, renamed to it when the block ends well and removed when it fails:
    a collection built in it appears whole or not at all."""
    tmp = target.with_name(f".{target.name}.building-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        yield tmp
        os.rename(tmp, target)
        fsync_dir(target.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def embed_file(
    reader: RecordReader, out: str | Path, *, encoder: Encoder, batch_size: int = 256, progress: bool | None = None
) -> EmbedReport:
    """Embed a file's records into .npy (rows in file order) or .parquet (id + embedding)."""
    target = Path(out)
    if target.suffix.lower() not in OUTPUT_FORMATS:
        raise InputError(f"Output {target} should end in one of {', '.join(OUTPUT_FORMATS)}, found '{target.suffix}'.")
    start = time.perf_counter()
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}{target.suffix}")
    _writable(target, tmp)  # before any record is read or embedded
    total = len(scan(reader))
    try:
        with progress_bar(total, progress, unit="doc") as bar:
            if target.suffix.lower() == ".npy":
                _write_npy(reader, tmp, encoder, total, batch_size, bar)
            else:
                _write_parquet(reader, tmp, encoder, batch_size, bar)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return EmbedReport(str(target), total, encoder.dim, reader.skipped, time.perf_counter() - start)


def _writable(target: Path, tmp: Path) -> None:
    """Make the output's folder and prove a file can be written there, or say why not."""
    try:
        if target.is_dir():
            raise IsADirectoryError(21, "it is a folder")
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp.touch()
        tmp.unlink()
    except OSError as exc:
        raise InputError(f"Cannot write {target} ({exc.strerror or exc}); choose a writable output path.") from exc


def _write_npy(reader: RecordReader, tmp: Path, encoder: Encoder, total: int, batch_size: int, bar: tqdm) -> None:
    matrix = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(total, encoder.dim))
    row = 0
    for batch in batched(reader, batch_size):
        matrix[row : row + len(batch)] = encoder.encode(
            [r.text for r in batch], batch_size=min(batch_size, 64), progress=False
        )
        row += len(batch)
        bar.update(len(batch))
    matrix.flush()
    del matrix


def _write_parquet(reader: RecordReader, tmp: Path, encoder: Encoder, batch_size: int, bar: tqdm) -> None:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise MissingExtraError("pyarrow", "parquet", "Writing .parquet files") from exc
    schema = pa.schema([("id", pa.string()), ("embedding", pa.list_(pa.float32(), encoder.dim))])
    with pq.ParquetWriter(tmp, schema) as writer:
        for batch in batched(reader, batch_size):
            vectors = encoder.encode([r.text for r in batch], batch_size=min(batch_size, 64), progress=False)
            flat = pa.array(vectors.reshape(-1), type=pa.float32())
            column = pa.FixedSizeListArray.from_arrays(flat, encoder.dim)
            writer.write_table(pa.table({"id": [r.id for r in batch], "embedding": column}, schema=schema))
            bar.update(len(batch))
