"""Keeps a collection's in-memory index in step with its durable store.

The store counts committed writes (its version) and logs removed labels; the index remembers the
version it reflects. Opening loads the last checkpoint (<collection>/index) and replays the
writes after it; another process's writes are replayed the same way before each search. A
checkpoint that fails its checksums, or predates the pruned part of the log, is rebuilt from
the store, so a damaged index costs time, never data.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nestvec import heap
from nestvec.errors import CollectionError, IndexCorruptError
from nestvec.index import checkpoint, hugepages
from nestvec.index.spec import IndexSpec
from nestvec.index.vector_index import VectorIndex
from nestvec.store.sqlite import Change, SQLiteStore

log = logging.getLogger("nestvec")
INDEX_DIR = "index"
# Rows in insertion order before a checkpoint renumbers an HNSW graph's rows by cluster
# (index/layout.py): below this a graph fits the caches' reach well enough to skip the k-means.
REORDER_FLOOR = 50_000


@dataclass(frozen=True)
class CompactReport:
    rows_before: int
    rows_after: int
    seconds: float


class LiveIndex:
    def __init__(self, folder: Path, spec: IndexSpec, dim: int, store: SQLiteStore) -> None:
        self.folder = folder / INDEX_DIR
        self.spec, self.dim, self._store = spec, dim, store
        self._index: VectorIndex | None = None
        self._generation = ""
        self._unsaved = 0  # rows added or removed since the last checkpoint
        self._compacting = False
        self.status = "not loaded"  # how the index was obtained, for `info` and tests

    @property
    def loaded(self) -> VectorIndex:
        """The index as last caught up by `current()` (searches read it under the collection's read lock)."""
        if self._index is None:
            return self.current()
        return self._index

    def behind(self) -> bool:
        """Whether `current()` has work to do. Read without the collection's lock: searches ask
        this first, so that one already caught up need not wait for every other search to end
        before taking the write lock for nothing."""
        index = self._index
        if index is None:
            return True
        floor, version = self._store.versions()
        return not floor <= index.version == version

    def current(self) -> VectorIndex:
        """The index, caught up with every write committed to the store so far."""
        floor, version = self._store.versions()
        if self._index is None or self._index.version < floor or self._newer_mapped_checkpoint(version):
            self._index = self._open()
        if self._index.version < version:
            with self._whole_or_dropped():
                self._replay(self._index)
            self._compact_if_mostly_dead()
        return self._index

    def _newer_mapped_checkpoint(self, version: int) -> bool:
        """A mapped index behind the store, with a newer checkpoint saved (another process wrote and
        checkpointed): mapping that one spares copying this one into memory to replay onto it."""
        index = self._index
        return (
            index is not None
            and index.mapped
            and index.version < version
            and checkpoint.saved_version(self.folder) > index.version
        )

    @contextmanager
    def _whole_or_dropped(self) -> Iterator[None]:
        """A change to the loaded index either completes or the index is dropped.

        Cut off half-way (Ctrl-C between adding a write's rows and recording its version, or any
        error), the index would hold rows its version does not cover; checkpointed on close, the
        next open would replay them again. Dropped, it is reloaded from the checkpoint and the store.
        """
        try:
            yield
        except BaseException:
            self._index, self._unsaved = None, 0
            raise

    def _open(self) -> VectorIndex:
        index = self._load_or_rebuild()
        heap.release()  # the files read and the rows replayed
        if not index.mapped:  # Linux collapses file mappings only when built with READ_ONLY_THP_FOR_FS
            hugepages.advise(index.faiss)
        return index

    def _load_or_rebuild(self) -> VectorIndex:
        if not (self.folder / "config.json").exists():
            self.status = "built from the store"
            return self._rebuild()
        try:
            index, self._generation = checkpoint.load(self.folder, self.spec, self.dim)
            if not self._store.log_floor() <= index.version <= self._store.version():
                raise IndexCorruptError(
                    f"{self.folder} is at store version {index.version}, which the store cannot replay from."
                )
        except IndexCorruptError as exc:
            log.warning("rebuilding the index from the store: %s", exc)
            self.status = f"rebuilt: {exc}"
            return self._rebuild()
        self.status = "loaded from checkpoint"
        return index

    def _rebuild(self) -> VectorIndex:
        # Sized for every stored row: replayed in batches, IVF would otherwise train its lists on
        # the first batches alone (420 lists for 1M rows) and a compaction could never grow them.
        index = VectorIndex(self.spec, self.dim, expected=self._store.chunk_count())
        self._replay(index)
        index.reorder()
        self._generation = uuid.uuid4().hex[:12]
        self._unsaved = 0
        try:
            checkpoint.save(index, self.folder, generation=self._generation, replace=True)
        except CollectionError as exc:  # a read-only or full disk: searches still work from memory
            log.warning("%s", exc)
            self._unsaved = len(index)
        return index

    def _replay(self, index: VectorIndex) -> None:
        self._unsaved += replay(index, self._store)

    def apply(self, change: Change, vectors: np.ndarray) -> None:
        """Our own write, applied directly when nothing else committed since we last looked."""
        index = self._index
        if index is None or index.version != change.version - 1:
            return  # the next current() replays it from the store
        with self._whole_or_dropped():
            index.remove(np.asarray(change.removed, dtype=np.int64))
            index.add(np.asarray(change.added, dtype=np.int64), vectors)
            index.version = change.version
        self._unsaved += len(change.added) + len(change.removed)
        if self._compact_if_mostly_dead():
            return
        if self._unsaved >= max(100_000, index.table.size // 2):
            self.checkpoint_if_possible()  # geometric spacing: a big build writes its checkpoint O(1) times over

    def checkpoint(self, *, force: bool = False) -> bool:
        """Save the index if enough changed since the last save (or at all, with `force`)."""
        index = self._index
        if index is None or (not force and self._unsaved == 0):
            return False
        if self._compact_if_mostly_dead():
            return True
        reordered = self._reorder_if_due(index)
        saved = checkpoint.save(index, self.folder, generation=self._generation, replace=reordered)
        self._unsaved = 0
        if saved:
            self._store.prune_log(index.version)
        return saved

    def _reorder_if_due(self, index: VectorIndex) -> bool:
        """Renumber the rows by cluster once those in insertion order reach the floor and outnumber
        those renumbered last time: geometric, so a big build pays O(1) times its size in all."""
        unordered = index.table.size - index.table.reordered_rows
        if not index.reorderable or unordered < max(REORDER_FLOOR, index.table.reordered_rows):
            return False
        try:
            order = index.cluster_order()
        except Exception as exc:  # only speed is lost (and the write that led here is committed)
            log.warning("the index's rows stay in insertion order: their cluster order failed (%r)", exc)
            return False
        with self._whole_or_dropped():  # cut off half-way, the index reloads from its checkpoint and the store
            index.renumber(order)
        self._generation = uuid.uuid4().hex[:12]  # a new row layout: its own vectors file
        hugepages.advise(index.faiss)
        return True

    def _compact_if_mostly_dead(self) -> bool:
        """More tombstones than live rows (upserts keep the replaced rows until a rebuild): rebuild.
        Memory then stays within twice the live rows under any churn; found by the soak, where
        upserts grew a server's memory by 0.1 MB/s. Geometric, so amortized O(1) per write."""
        index = self._index
        if self._compacting or index is None or index.table.dead <= max(1000, index.table.alive_count):
            return False
        try:
            self.compact()
        except CollectionError as exc:  # a full disk: the rebuild itself is kept in memory
            log.warning("%s", exc)
        return True

    def checkpoint_if_possible(self) -> None:
        """A checkpoint that only spares work: after a committed write, or when closing, a full disk
        must not turn into an error about a write that did land. The store has it all."""
        try:
            self.checkpoint()
        except CollectionError as exc:
            log.warning("%s", exc)

    def compact(self) -> CompactReport:
        """Rebuild from the store: drops deleted rows, retrains codes on today's corpus."""
        import time

        start = time.perf_counter()
        self._compacting = True  # current() replays, and must not start a compaction of its own
        try:
            before = self.current().table.size
            self._index = self._rebuild()
        finally:
            self._compacting = False
        hugepages.advise(self._index.faiss)
        self.status = "compacted"
        self._store.prune_log(self._index.version)
        return CompactReport(before, self._index.table.size, time.perf_counter() - start)


def replay(index: VectorIndex, store: SQLiteStore) -> int:
    """Apply the writes committed after `index.version` (read in one transaction); returns rows changed."""
    now, removed, batches = store.changes_since(index.version, index.dim)
    changed = len(removed)
    for labels, vectors in batches:
        index.add(labels, vectors)
        changed += len(labels)
    index.remove(removed)
    index.version = now
    return changed
