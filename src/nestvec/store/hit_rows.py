"""Which document and window each chunk label stands for, held in memory for searches.

A search turns its k labels into documents. Read from SQLite, each label is a B-tree descent
through pages that the index's own search has just pushed out of the CPU's caches and TLB: on
1M vectors that cost about 20 µs a label, a fifth of a whole search. Labels are never reused
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

import numpy as np

from nestvec.store.sqlite import ChunkRow, SQLiteStore

_STRINGS = np.dtypes.StringDType()


class HitRows:
    def __init__(self, store: SQLiteStore) -> None:
        self._store = store
        self._lock = threading.Lock()  # one reader of new rows at a time; lookups read a snapshot
        empty = np.empty(0, dtype=np.int64)
        self._table: tuple[np.ndarray, np.ndarray, np.ndarray] = (empty, np.empty(0, dtype=_STRINGS), empty)

    def rows(self, labels: Sequence[int]) -> dict[int, ChunkRow]:
        """The rows of `labels` that exist (or existed after this table was read)."""
        wanted = np.asarray(labels, dtype=np.int64)
        known, docs, spans = self._table
        if len(wanted) and (not len(known) or wanted.max() > known[-1]):
            known, docs, spans = self._extend()
        at = np.minimum(np.searchsorted(known, wanted), max(len(known) - 1, 0))
        hit = known[at] == wanted if len(known) else np.zeros(len(wanted), dtype=bool)
        out = {
            label: ChunkRow(label, doc, *span)
            for label, doc, span in zip(
                wanted[hit].tolist(), docs[at[hit]].tolist(), spans[at[hit]].tolist(), strict=True
            )
        }
        missing = wanted[~hit].tolist()
        if missing:  # deleted before this table was read: the store says so for certain
            out.update(self._store.chunk_rows(missing))
        return out

    def _extend(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        with self._lock:
            known, docs, spans = self._table
            after = int(known[-1]) if len(known) else -1
            parts = [(known, docs, spans)]
            for batch in self._store.chunk_rows_after(after):
                parts.append(
                    (
                        np.fromiter((r[0] for r in batch), dtype=np.int64, count=len(batch)),
                        np.array([r[1] for r in batch], dtype=_STRINGS),
                        np.array([r[2:] for r in batch], dtype=np.int64).reshape(len(batch), 3),
                    )
                )
            if len(parts) > 1:
                self._table = (
                    np.concatenate([p[0] for p in parts]),
                    np.concatenate([p[1] for p in parts]),
                    np.concatenate([p[2].reshape(-1, 3) for p in parts]),
                )
            return self._table
