"""Which document and window each chunk label stands for, held in memory for searches.

A search turns its k labels into documents. Read from SQLite, each label is a B-tree descent
through pages that the index's own search has just pushed out of the CPU's caches and TLB (on
1M vectors, read from memory instead: 0.03-0.04 ms less a search of about 0.85,
bench/results/search-overhead-session28.json). Labels are never reused
(AUTOINCREMENT) and a chunk's document and window never change once written (only its vector
may be rewritten), so a row read once stays true: the table is read once, in label order, and
extended by the labels written since (always above the highest one read). A label deleted since
still maps to its document, which the search then fetches by id and skips if it is gone, as it
does for a document deleted between its two reads. Where no label is missing from a run (nothing
was deleted before the read), a label's row is found by subtraction, not by binary search (whose
twenty probes a label miss the caches right after an index search), and no labels are held:
then 28 bytes a chunk with ids of up to 15 bytes, 36 otherwise. The searcher drops the table with
the index it belongs to (a compaction or rebuild starts a new one).
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from nestvec import heap
from nestvec.store.sqlite import ChunkRow, SQLiteStore

_STRINGS = np.dtypes.StringDType()
# Rows per statement: each batch's tuples are freed before the next is read, so small batches leave
# fewer of the allocator's arenas pinned by a survivor once the table is built.
_BATCH = 5_000
_BIG_READ = 100_000  # rows read in one extension after which freed heap is handed back


class _Part(NamedTuple):
    first: int  # lowest label
    last: int  # highest label
    labels: np.ndarray | None  # ascending; None when the part holds every label first..last
    docs: np.ndarray
    spans: np.ndarray  # (chunk number, start, end) per row

    def find(self, wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(which of `wanted` are here, their positions; 0 where absent)."""
        if self.labels is None:
            hit = (wanted >= self.first) & (wanted <= self.last)
            return hit, np.where(hit, wanted - self.first, 0)
        at = np.minimum(np.searchsorted(self.labels, wanted), len(self.labels) - 1)
        return self.labels[at] == wanted, at

    def all_labels(self) -> np.ndarray:
        return np.arange(self.first, self.last + 1, dtype=np.int64) if self.labels is None else self.labels


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
        if len(wanted) and (not parts or wanted.max() > parts[-1].last):
            parts = self._extend()
        out: dict[int, ChunkRow] = {}
        missing = np.ones(len(wanted), dtype=bool)
        for part in parts:
            hit, at = part.find(wanted)
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
            after = parts[-1].last if parts else -1
            new = [_columns(batch) for batch in self._store.chunk_rows_after(after, _BATCH)]
            read = sum(len(part.docs) for part in new)
            if new:
                parts.append(_joined(new))
            del new
            while len(parts) > 1 and len(parts[-2].docs) <= 2 * len(parts[-1].docs):
                parts[-2:] = [_joined(parts[-2:])]
            self._parts = parts
        if read >= _BIG_READ:
            heap.release()  # the batches' tuples and the parts merged away
        return parts


def _columns(rows: list[tuple[int, str, int, int, int]]) -> _Part:
    labels, docs, *spans = zip(*rows, strict=True)
    return _part(
        np.array(labels, dtype=np.int64),
        np.array(docs, dtype=_STRINGS),
        _narrow(np.array(spans, dtype=np.int64).T),  # row-major: one hit's three values side by side
    )


def _part(labels: np.ndarray, docs: np.ndarray, spans: np.ndarray) -> _Part:
    first, last = int(labels[0]), int(labels[-1])
    dense = last - first + 1 == len(labels)  # ascending and distinct, so nothing is missing
    return _Part(first, last, None if dense else labels, docs, spans)


def _narrow(values: np.ndarray) -> np.ndarray:
    """int32 where every value fits (a 2 GB document would not): 12 bytes a row instead of 24."""
    small = not values.size or (values.min() >= 0 and values.max() <= np.iinfo(np.int32).max)
    return np.ascontiguousarray(values, dtype=np.int32 if small else np.int64)


def _joined(parts: list[_Part]) -> _Part:
    if len(parts) == 1:
        return parts[0]
    docs = np.concatenate([p.docs for p in parts])
    spans = np.concatenate([p.spans for p in parts])
    if all(p.labels is None for p in parts) and all(b.first == a.last + 1 for a, b in itertools.pairwise(parts)):
        return _Part(parts[0].first, parts[-1].last, None, docs, spans)
    return _Part(parts[0].first, parts[-1].last, np.concatenate([p.all_labels() for p in parts]), docs, spans)
