"""Which document and window each chunk label stands for, held in memory for searches.

A search turns its k labels into documents. Read from SQLite, each label is a B-tree descent
through pages that the index's own search has just pushed out of the CPU's caches and TLB (on
1M vectors, read from memory instead: 0.03-0.04 ms less a search of about 0.85,
bench/results/search-overhead-session28.json). Labels are never reused
(AUTOINCREMENT) and a chunk's document and window never change once written (only its vector
may be rewritten), so a row read once stays true: the table is read once, in label order, and
extended by the labels written since (always above the highest one read). A label deleted since
still maps to its document, which the search then fetches by id and skips if it is gone, as it
does for a document deleted between its two reads. It costs about 48 bytes a chunk; the
searcher drops it with the index it belongs to (a compaction or rebuild starts a new one).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from nestvec.store.sqlite import ChunkRow, SQLiteStore

_STRINGS = np.dtypes.StringDType()


class _Part(NamedTuple):
    labels: np.ndarray  # ascending
    docs: np.ndarray
    spans: np.ndarray  # (chunk number, start, end) per row


class HitRows:
    def __init__(self, store: SQLiteStore) -> None:
        self._store = store
        self._lock = threading.Lock()  # one reader of new rows at a time; lookups read a snapshot
        # Parts in label order, each under half the size of the one before (merged like a binary
        # counter): a search after a small write reads only the new rows and never copies the whole
        # table; a row is copied O(log n) times in all, and a lookup visits O(log n) parts.
        self._parts: list[_Part] = []

    def rows(self, labels: Sequence[int]) -> dict[int, ChunkRow]:
        """The rows of `labels` that exist (or existed after this table was read)."""
        wanted = np.asarray(labels, dtype=np.int64)
        parts = self._parts
        if len(wanted) and (not parts or wanted.max() > parts[-1].labels[-1]):
            parts = self._extend()
        out: dict[int, ChunkRow] = {}
        missing = np.ones(len(wanted), dtype=bool)
        for part in parts:
            at = np.minimum(np.searchsorted(part.labels, wanted), len(part.labels) - 1)
            hit = part.labels[at] == wanted
            if hit.any():
                missing &= ~hit
                rows = zip(wanted[hit].tolist(), part.docs[at[hit]].tolist(), part.spans[at[hit]].tolist(), strict=True)
                out.update((label, ChunkRow(label, doc, *span)) for label, doc, span in rows)
        if missing.any():  # deleted before this table was read: the store says so for certain
            out.update(self._store.chunk_rows(wanted[missing].tolist()))
        return out

    def _extend(self) -> list[_Part]:
        with self._lock:
            parts = list(self._parts)
            after = int(parts[-1].labels[-1]) if parts else -1
            new = [_columns(batch) for batch in self._store.chunk_rows_after(after)]  # a batch's tuples at a time
            if new:
                parts.append(_joined(new))
            while len(parts) > 1 and len(parts[-2].labels) <= 2 * len(parts[-1].labels):
                parts[-2:] = [_joined(parts[-2:])]
            self._parts = parts
            return parts


def _columns(rows: list[tuple[int, str, int, int, int]]) -> _Part:
    labels, docs, *spans = zip(*rows, strict=True)
    return _Part(
        np.array(labels, dtype=np.int64),
        np.array(docs, dtype=_STRINGS),
        np.array(spans, dtype=np.int64).T.copy(),  # row-major: one hit's three values side by side
    )


def _joined(parts: list[_Part]) -> _Part:
    return parts[0] if len(parts) == 1 else _Part(*(np.concatenate(column) for column in zip(*parts, strict=True)))
