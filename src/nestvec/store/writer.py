"""A collection's write path: documents checked, cut into chunks, embedded with no lock held, then
stored and indexed in one short write-locked step."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np

from nestvec.batching import batched
from nestvec.errors import DuplicateIdError, InputError
from nestvec.locks import ReadWriteLock
from nestvec.store import chunking
from nestvec.store.embedding import CollectionEmbedder
from nestvec.store.given import checked_vectors
from nestvec.store.live_index import LiveIndex
from nestvec.store.sqlite import SQLiteStore, StoredChunk, StoredDoc
from nestvec.store.types import AddReport, Document
from nestvec.store.validate import as_document, check_unique

FIT_SAMPLE = 4096  # documents in the first batch when whitening or principal axes are still to be fitted


class Writer:
    def __init__(self, store: SQLiteStore, live: LiveIndex, lock: ReadWriteLock, embedder: CollectionEmbedder) -> None:
        self._store, self._live, self._lock, self._embedder = store, live, lock, embedder
        self.recipe = embedder.recipe

    def write(
        self, documents: Iterable[Any], *, vectors: Any, replace: bool, batch_size: int, progress: bool | None
    ) -> AddReport:
        if vectors is not None:
            return self._add_given(documents, vectors, replace=replace)
        return self._write(documents, replace=replace, batch_size=batch_size, progress=progress)

    def _add_given(self, documents: Iterable[Any], vectors: Any, *, replace: bool) -> AddReport:
        docs = [as_document(d) for d in documents]
        check_unique(docs)
        if not replace:
            self._refuse_stored(self._store.existing_ids([d.id for d in docs]))
        matrix = checked_vectors(vectors, rows=len(docs), dim=self._embedder.model_dim, what="vectors")
        # one vector per document: each is one whole chunk, cut at the window as the model would
        encoder = self._embedder.side_encoder("document")
        plans = chunking.plan(encoder, [d.text for d in docs], chunking.LongDocuments("truncate"))
        return self._add_checked(docs, plans, matrix, replace=replace, start=time.perf_counter())

    def _write(self, documents: Iterable[Any], *, replace: bool, batch_size: int, progress: bool | None) -> AddReport:
        if batch_size < 1:
            raise InputError(f"batch_size must be ≥ 1, got {batch_size}.")
        if isinstance(documents, (str, bytes, Document, dict)):
            raise InputError("add/upsert take an iterable of documents; wrap a single one in a list.")
        report = AddReport()
        stream: Iterator[Document]
        if isinstance(documents, Sequence):
            whole = [as_document(d) for d in documents]
            check_unique(whole)
            stream = iter(whole)
        else:
            stream = (as_document(d) for d in documents)
        # Vector steps still to be fitted are fitted on a larger first batch.
        first = batch_size if self._embedder.steps.fitted else max(batch_size, FIT_SAMPLE)
        head = list(itertools.islice(stream, first))
        for batch in itertools.chain([head] if head else [], batched(stream, batch_size)):
            report.merge(self._write_batch(batch, replace=replace, progress=progress))
        return report

    def _write_batch(self, docs: list[Document], *, replace: bool, progress: bool | None) -> AddReport:
        start = time.perf_counter()
        check_unique(docs)
        if not replace:
            self._refuse_stored(self._store.existing_ids([d.id for d in docs]))  # before the model runs, not after
        encoder = self._embedder.side_encoder("document")
        plans = chunking.plan(encoder, [d.text for d in docs], self.recipe.long_documents)
        pieces = [(d, n, s, e) for d, p in zip(docs, plans, strict=True) for n, (s, e) in enumerate(p.spans)]
        texts = [d.text[s:e] for d, _, s, e in pieces]
        vectors = self._embedder.embed(texts, batch_size=32, progress=progress, documents=True)
        return self._store_batch(docs, plans, vectors, replace=replace, start=start)

    def add_embedded(
        self, docs: Sequence[Document | dict[str, Any]], plans: Sequence[chunking.DocPlan], vectors: np.ndarray,
        *, replace: bool,
    ) -> AddReport:  # fmt: skip
        start = time.perf_counter()
        stored = [as_document(d) for d in docs]
        check_unique(stored)
        return self._add_checked(stored, plans, vectors, replace=replace, start=start)

    def _add_checked(
        self, stored: list[Document], plans: Sequence[chunking.DocPlan], vectors: np.ndarray, *, replace: bool,
        start: float,
    ) -> AddReport:  # fmt: skip
        """`add_embedded` for documents already validated (as_document, check_unique)."""
        chunks = sum(len(p.spans) for p in plans)
        width = self.recipe.identity.dim if self.recipe.identity else vectors.shape[-1]
        if len(plans) != len(stored) or vectors.ndim != 2 or vectors.shape != (chunks, width):
            raise InputError(
                f"Expected one plan per document and a ({chunks}, {width}) matrix of chunk vectors; got "
                f"{len(plans)} plans for {len(stored)} documents and vectors of shape {vectors.shape}."
            )
        steps = self._embedder.fitted_steps(vectors)
        assert steps is not None  # a sample was given, so the steps are fitted
        return self._store_batch(stored, list(plans), steps.apply(vectors), replace=replace, start=start)

    def _store_batch(
        self, docs: list[Document], plans: list[chunking.DocPlan], vectors: np.ndarray, *, replace: bool, start: float
    ) -> AddReport:
        ids = [d.id for d in docs]
        pieces = [(d, n, s, e) for d, p in zip(docs, plans, strict=True) for n, (s, e) in enumerate(p.spans)]
        stored = [StoredDoc(d.id, d.text, d.metadata, p.tokens, p.truncated) for d, p in zip(docs, plans, strict=True)]
        chunks = [StoredChunk(d.id, n, s, e, v) for (d, n, s, e), v in zip(pieces, vectors, strict=True)]
        with self._lock.write():
            existing = self._store.existing_ids(ids)
            if not replace:
                self._refuse_stored(existing)  # another writer got there while we embedded
            self._live.current()
            self._live.apply(self._store.write(stored, chunks), vectors)
        return AddReport(
            added=len(docs) - len(existing),
            updated=len(existing),
            truncated=sum(p.truncated for p in plans),
            chunks=len(chunks),
            seconds=time.perf_counter() - start,
        )

    @staticmethod
    def _refuse_stored(existing: set[str]) -> None:
        if existing:
            shown = ", ".join(repr(i) for i in sorted(existing)[:10])
            raise DuplicateIdError(
                f"{len(existing)} id(s) are already in the collection: {shown}. "
                "Use upsert to replace them; nothing from this batch was written."
            )

    def delete(self, ids: Sequence[str]) -> list[str]:
        with self._lock.write():
            self._live.current()
            found, change = self._store.delete(list(ids))
            if change is not None:
                self._live.apply(change, np.empty((0, self.recipe.dim), dtype=np.float32))
        return found
