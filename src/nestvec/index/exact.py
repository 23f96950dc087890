"""The float32 vectors beside compressed codes, by row: a memory-mapped file plus a RAM tail.

Rescoring reads a few hundred rows per query, so the file keeps them out of the process's
anonymous memory: only the pages touched are cached, and the kernel may drop them. Rows added
since the last checkpoint wait in RAM; only a checkpoint (under the index lock) writes the file,
and only by appending, so other processes' maps of the prefix stay valid.
"""

from __future__ import annotations

import mmap
import os
import uuid
from pathlib import Path

import numpy as np

from nestvec.errors import IndexCorruptError
from nestvec.files import crc32_blocks

BLOCK_ROWS = 65_536


class ExactVectors:
    def __init__(self, dim: int, path: Path | None = None, *, disk_rows: int = 0) -> None:
        self.dim, self.path, self.disk_rows = dim, path, disk_rows
        self._map: np.ndarray | None = None
        self._parts: list[np.ndarray] = []
        self._tail = np.empty((0, dim), dtype=np.float32)
        # Rows read from another ExactVectors in a new order until persisted (`permuted`).
        self._source: tuple[ExactVectors, np.ndarray] | None = None
        if path is not None and disk_rows:
            size = path.stat().st_size if path.exists() else 0
            if size < disk_rows * self.row_bytes:
                raise IndexCorruptError(
                    f"{path} holds {size // self.row_bytes} vectors, its checkpoint says {disk_rows}."
                )
            self._map = _map_rows(path, disk_rows, dim)

    @property
    def row_bytes(self) -> int:
        return 4 * self.dim

    @property
    def tail(self) -> np.ndarray:
        if self._parts:
            self._tail = np.concatenate([self._tail, *self._parts])
            self._parts = []
        return self._tail

    @property
    def rows(self) -> int:
        return self.disk_rows + self._sourced + len(self._tail) + sum(len(p) for p in self._parts)

    @property
    def _sourced(self) -> int:
        return 0 if self._source is None else len(self._source[1])

    def permuted(self, order: np.ndarray) -> ExactVectors:
        """These rows renumbered (new row i = row `order[i]`), read through this object, and written
        whole, in the new order, by the next `persist`: no copy of them in RAM meanwhile."""
        out = ExactVectors(self.dim)
        out._source = (self, np.asarray(order, dtype=np.int64))
        return out

    def append(self, vectors: np.ndarray) -> None:
        self._parts.append(np.array(vectors, dtype=np.float32))

    def get(self, rows: np.ndarray) -> np.ndarray:
        if self._source is not None:
            source, order = self._source
            out = np.empty((len(rows), self.dim), dtype=np.float32)
            sourced = rows < len(order)
            out[sourced] = source.get(order[rows[sourced]])
            out[~sourced] = self.tail[rows[~sourced] - len(order)]
            return out
        if self._map is not None and (len(rows) == 0 or rows.max() < self.disk_rows):
            return np.asarray(self._map[rows])
        out = np.empty((len(rows), self.dim), dtype=np.float32)
        on_disk = rows < self.disk_rows
        if on_disk.any() and self._map is not None:
            out[on_disk] = self._map[rows[on_disk]]
        out[~on_disk] = self.tail[rows[~on_disk] - self.disk_rows]
        return out

    def nbytes_ram(self) -> int:
        return (self.rows - self.disk_rows - self._sourced) * self.row_bytes

    def persist(self, folder: Path, stem: str) -> Path:
        """Make every row durable under `folder`; returns the file that now holds them.

        Our own file is extended in place only when the rows other processes appended to it since
        our last checkpoint are the very rows we hold there (they replayed the same history into the
        same layout). Otherwise, e.g. when one process kept a row that another's replay skipped, a
        new file is written whole: a process's row table is never paired with another's vectors.
        """
        start = self._extendable(folder)
        if start is not None and self.path is not None:
            path, mode = self.path, "r+b"
        else:
            path, mode, start = _new_file(folder, stem), "wb", 0
        with path.open(mode) as fh:
            fh.seek(start * self.row_bytes)
            for lo in range(start, self.rows, BLOCK_ROWS):
                hi = min(self.rows, lo + BLOCK_ROWS)
                fh.write(self.get(np.arange(lo, hi)).tobytes())
            fh.flush()
            os.fsync(fh.fileno())
        self.path, self.disk_rows = path, self.rows
        self._tail, self._parts, self._source = np.empty((0, self.dim), dtype=np.float32), [], None
        self._map = _map_rows(path, self.rows, self.dim) if self.rows else None
        return path

    def _extendable(self, folder: Path) -> int | None:
        """The row to append from when our file can be extended in place, else None."""
        if self.path is None or self.path.parent != folder or not self.path.exists():
            return None
        on_disk = self.path.stat().st_size // self.row_bytes
        if on_disk < self.disk_rows:
            return None  # cut short under us: trust nothing in it beyond what we mapped
        shared = min(on_disk, self.rows)
        if shared > self.disk_rows:
            theirs = np.fromfile(
                self.path,
                dtype=np.float32,
                count=(shared - self.disk_rows) * self.dim,
                offset=self.disk_rows * self.row_bytes,
            )
            if not np.array_equal(theirs, self.tail[: shared - self.disk_rows].ravel()):
                return None
        return shared

    def checksums(self) -> list[int]:
        """crc32 per block of the rows on disk."""
        if self.path is None or not self.disk_rows:
            return []
        return crc32_blocks(self.path, size=self.disk_rows * self.row_bytes, block=BLOCK_ROWS * self.row_bytes)


def _new_file(folder: Path, stem: str) -> Path:
    """`stem.f32`, or a name no other process uses when that one holds another layout's rows."""
    plain = folder / f"{stem}.f32"
    return plain if not plain.exists() else folder / f"{stem}-{uuid.uuid4().hex[:8]}.f32"


def _map_rows(path: Path, rows: int, dim: int) -> np.ndarray:
    """Read-only rows of a file, mapped for random access: the kernel's readahead would
    otherwise pull whole neighbourhoods of the file into memory for each row rescored."""
    with path.open("rb") as fh:
        mapped = mmap.mmap(fh.fileno(), rows * dim * 4, prot=mmap.PROT_READ)
    mapped.madvise(mmap.MADV_RANDOM)
    return np.frombuffer(mapped, dtype=np.float32).reshape(rows, dim)
