"""Collections: durable documents + vectors + recipe in one folder, searchable by text."""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nestvec.batching import batched
from nestvec.encoders import DEFAULT_MODEL, Encoder, load_encoder
from nestvec.errors import CollectionError, DuplicateIdError, InputError
from nestvec.files import config_header, fsync_dir, read_config, write_json_atomic
from nestvec.index.base import Index, SearchResult
from nestvec.index.binary import BinaryIndex
from nestvec.index.flat import FlatIndex
from nestvec.index.rows import RowIndex
from nestvec.registry import Registry
from nestvec.store import chunking
from nestvec.store.filters import compile_filter
from nestvec.store.recipe import Recipe
from nestvec.store.sqlite import SQLiteStore, StoredChunk, StoredDoc
from nestvec.store.types import AddReport, Chunk, Document, Hit
from nestvec.store.validate import as_document, check_unique
from nestvec.transforms import Truncate

INDEXES: Registry[type[RowIndex]] = Registry("index kind", {"flat": FlatIndex, "binary": BinaryIndex})
STORE_FILE = "store.sqlite3"


@dataclass(frozen=True)
class CollectionInfo:
    path: str
    documents: int
    chunks: int
    model: str
    dim: int
    index: str
    long_documents: str
    bytes_on_disk: int
    recipe: dict[str, Any]


class Collection:
    """Use `Collection.create` or `Collection.open`; one writer process at a time."""

    def __init__(self, path: Path, recipe: Recipe, store: SQLiteStore, encoder: Encoder | None) -> None:
        self.path = path
        self.recipe = recipe
        self._store = store
        self._encoder = encoder
        self._index: Index | None = None
        self._seen_version = -1
        self._lock = threading.RLock()

    # -- lifecycle ---------------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        path: str | Path,
        *,
        model: str | Encoder = DEFAULT_MODEL,
        long_documents: str = "truncate",
        overlap: int = 32,
        index: str = "flat",
        dims: int | None = None,
        rescore: int | None = None,
    ) -> Collection:
        """Create an empty collection; the folder appears complete or not at all.

        `index` is "flat" (exact float32) or "binary" (sign bits in RAM; the best k × `rescore`
        candidates are rescored with the float vectors on disk, 4 by default). `dims` truncates
        documents and queries alike (Matryoshka).
        """
        target = Path(path).expanduser().resolve()
        if target.exists():
            raise CollectionError(f"{target} already exists. Open it with Collection.open, or choose a new path.")
        INDEXES[index]  # validates the name before any work
        encoder = load_encoder(model) if isinstance(model, (str, Path)) else model
        ref = encoder.source
        if dims is not None and not 1 <= dims <= encoder.dim:
            raise InputError(f"dims must be between 1 and the model's {encoder.dim}, got {dims}.")
        rescore = (4 if index == "binary" else 0) if rescore is None else rescore
        if rescore < 0:
            raise InputError(f"rescore must be ≥ 0 (0 turns rescoring off), got {rescore}.")
        long_docs = chunking.LongDocuments(long_documents, overlap)
        recipe = Recipe(ref, encoder.identity, index, long_docs, dims, rescore)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.creating-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            tmp.mkdir()
            SQLiteStore(tmp / STORE_FILE, create=True).close()
            write_json_atomic(tmp / "config.json", {**config_header("collection"), "recipe": recipe.to_dict()})
            os.rename(tmp, target)
            fsync_dir(target.parent)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return cls(target, recipe, SQLiteStore(target / STORE_FILE), encoder)

    @classmethod
    def open(cls, path: str | Path, *, model: str | Encoder | None = None) -> Collection:
        """Open an existing collection. `model` overrides where the model is found; it must match."""
        target = Path(path).expanduser().resolve()
        config = read_config(target, "collection")
        try:
            recipe = Recipe.from_dict(config["recipe"])
        except (KeyError, TypeError, ValueError) as exc:
            raise CollectionError(f"{target}/config.json has a malformed recipe ({exc!r}).") from exc
        encoder = load_encoder(model) if isinstance(model, (str, Path)) else model
        if encoder is not None:
            recipe.check_encoder(encoder.identity, str(target))
        return cls(target, recipe, SQLiteStore(target / STORE_FILE), encoder)

    def close(self) -> None:
        self._store.close()

    def __enter__(self) -> Collection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- model and index ---------------------------------------------------------------------
    @property
    def encoder(self) -> Encoder:
        """The recipe's encoder, loaded on first use and checked against the recipe."""
        if self._encoder is None:
            encoder = load_encoder(self.recipe.model)
            self.recipe.check_encoder(encoder.identity, str(self.path))
            self._encoder = encoder
        return self._encoder

    def _embed(self, texts: list[str], *, batch_size: int = 32, progress: bool | None = None) -> np.ndarray:
        """Documents and queries take exactly this path, so they are always comparable."""
        vectors = self.encoder.encode(texts, batch_size=batch_size, progress=progress)
        if self.recipe.dims is not None and len(vectors):
            vectors = Truncate(self.recipe.dims).apply(vectors)
        return vectors

    def _synced_index(self) -> Index:
        """The in-memory index, reloaded when another process has committed since we looked."""
        version = self._store.data_version()
        if self._index is None or version != self._seen_version:
            index = INDEXES[self.recipe.index](self.recipe.dim)
            for labels, vectors in self._store.iter_vectors(self.recipe.dim):
                index.add(labels, vectors)
            self._index, self._seen_version = index, version
        return self._index

    def _forget_index_if_stale(self) -> None:
        # Our own commits leave data_version alone; a change means another process wrote too.
        if self._store.data_version() != self._seen_version:
            self._index = None

    # -- writes ------------------------------------------------------------------------------
    def add(
        self, documents: Iterable[Document | dict[str, Any]], *, batch_size: int = 256, progress: bool | None = None
    ) -> AddReport:
        """Add new documents; an id already stored raises DuplicateIdError (use `upsert` to replace).

        Each batch is one transaction: once a batch returns, its documents are on disk.
        A list is validated whole before anything is written.
        """
        return self._write(documents, replace=False, batch_size=batch_size, progress=progress)

    def upsert(
        self, documents: Iterable[Document | dict[str, Any]], *, batch_size: int = 256, progress: bool | None = None
    ) -> AddReport:
        """Add documents, replacing any stored document with the same id (its chunks too)."""
        return self._write(documents, replace=True, batch_size=batch_size, progress=progress)

    def _write(self, documents: Iterable[Any], *, replace: bool, batch_size: int, progress: bool | None) -> AddReport:
        if batch_size < 1:
            raise InputError(f"batch_size must be ≥ 1, got {batch_size}.")
        if isinstance(documents, (str, bytes, Document, dict)):
            raise InputError("add/upsert take an iterable of documents; wrap a single one in a list.")
        report = AddReport()
        batches: Iterable[list[Document]]
        if isinstance(documents, Sequence):
            whole = [as_document(d) for d in documents]
            check_unique(whole)
            batches = (whole[i : i + batch_size] for i in range(0, len(whole), batch_size))
        else:
            batches = batched((as_document(d) for d in documents), batch_size)
        for batch in batches:
            report.merge(self._write_batch(batch, replace=replace, progress=progress))
        return report

    def _write_batch(self, docs: list[Document], *, replace: bool, progress: bool | None) -> AddReport:
        start = time.perf_counter()
        check_unique(docs)
        with self._lock:
            existing = self._store.existing_ids([d.id for d in docs])
            if existing and not replace:
                shown = ", ".join(repr(i) for i in sorted(existing)[:10])
                raise DuplicateIdError(
                    f"{len(existing)} id(s) are already in the collection: {shown}. "
                    "Use upsert to replace them; nothing from this batch was written."
                )
            plans = chunking.plan(self.encoder, [d.text for d in docs], self.recipe.long_documents)
            pieces = [(d, n, s, e) for d, p in zip(docs, plans, strict=True) for n, (s, e) in enumerate(p.spans)]
            vectors = self._embed([d.text[s:e] for d, _, s, e in pieces], progress=progress)
            stored = [
                StoredDoc(d.id, d.text, d.metadata, p.tokens, p.truncated) for d, p in zip(docs, plans, strict=True)
            ]
            chunks = [StoredChunk(d.id, n, s, e, v) for (d, n, s, e), v in zip(pieces, vectors, strict=True)]
            index = self._synced_index()
            removed, added = self._store.write(stored, chunks)
            index.remove(np.asarray(removed, dtype=np.int64))
            index.add(np.asarray(added, dtype=np.int64), vectors)
            self._forget_index_if_stale()
        return AddReport(
            added=len(docs) - len(existing),
            updated=len(existing),
            truncated=sum(p.truncated for p in plans),
            chunks=len(chunks),
            seconds=time.perf_counter() - start,
        )

    def delete(self, ids: Sequence[str]) -> list[str]:
        """Delete documents by id; returns the ids that existed (unknown ids are ignored)."""
        if isinstance(ids, str):
            ids = [ids]
        with self._lock:
            index = self._synced_index()
            found, labels = self._store.delete(list(ids))
            index.remove(np.asarray(labels, dtype=np.int64))
            self._forget_index_if_stale()
        return found

    # -- reads -------------------------------------------------------------------------------
    def count(self) -> int:
        return self._store.count()

    def __len__(self) -> int:
        return self.count()

    def get(self, ids: Sequence[str]) -> list[Document]:
        """Stored documents for `ids`, in the order asked; unknown ids are left out."""
        if isinstance(ids, str):
            ids = [ids]
        found = self._store.get(list(ids))
        return [Document(found[i].id, found[i].text, found[i].metadata) for i in ids if i in found]

    def existing(self, ids: Sequence[str]) -> set[str]:
        """Which of `ids` are stored."""
        return self._store.existing_ids(list(ids))

    def __iter__(self) -> Iterator[Document]:
        for doc in self._store.iter_documents():
            yield Document(doc.id, doc.text, doc.metadata)

    def search(self, query: str, *, k: int = 10, filter: dict[str, Any] | None = None) -> list[Hit]:
        """The k best documents for `query` (each once, with its best chunk), best first."""
        return self.search_batch([query], k=k, filter=filter)[0]

    def search_batch(
        self, queries: Sequence[str], *, k: int = 10, filter: dict[str, Any] | None = None
    ) -> list[list[Hit]]:
        """`search` for many queries at once; the queries are embedded in one batch."""
        if isinstance(queries, str):
            raise InputError("search_batch takes a list of queries; use search() for one.")
        for query in queries:
            if not isinstance(query, str) or not query.strip():
                raise InputError(f"Each query must be a non-empty string, got {query!r}.")
        if not isinstance(k, int) or isinstance(k, bool) or k <= 0:
            raise InputError(f"k must be a positive integer, got {k!r}.")
        allowed = None
        if filter is not None:
            where, params = compile_filter(filter)
            allowed = self._store.labels_where(where, params)
        with self._lock:
            index = self._synced_index()
            if len(index) == 0:
                return [[] for _ in queries]
            vectors = self._embed(list(queries), batch_size=64, progress=False)
            return [self._best_per_document(index, vector, k, allowed) for vector in vectors]

    def _best_per_document(self, index: Index, vector: np.ndarray, k: int, allowed: np.ndarray | None) -> list[Hit]:
        fetch = k
        while True:
            result = self._rescored(
                vector, index.search(vector, fetch * max(self.recipe.rescore, 1), allowed=allowed), fetch
            )
            rows = self._store.chunk_rows(result.labels.tolist())
            best: dict[str, tuple[int, float]] = {}
            for label, score in zip(result.labels.tolist(), result.scores.tolist(), strict=True):
                row = rows.get(label)
                if row is not None and row.doc_id not in best:
                    best[row.doc_id] = (label, score)
            if len(best) >= k or len(result) < fetch or fetch >= len(index):
                break
            fetch *= 4  # several chunks of one document crowded the top: look deeper
        docs = self._store.get(list(best)[:k])
        hits = []
        for doc_id, (label, score) in list(best.items())[:k]:
            doc, row = docs[doc_id], rows[label]
            chunk = None
            if self.recipe.long_documents.mode == "split":
                chunk = Chunk(row.number, row.start, row.end, doc.text[row.start : row.end])
            hits.append(Hit(doc_id, float(score), doc.text, doc.metadata, chunk))
        return hits

    def _rescored(self, vector: np.ndarray, result: SearchResult, keep: int) -> SearchResult:
        """Re-rank index candidates with the exact float vectors from the store."""
        if self.recipe.rescore <= 0 or len(result) == 0:
            return result
        exact = self._store.vectors_of(result.labels.tolist(), self.recipe.dim) @ vector
        order = np.lexsort((result.labels, -exact))[:keep]
        return SearchResult(result.labels[order], exact[order].astype(np.float32))

    def info(self) -> CollectionInfo:
        size = sum(p.stat().st_size for p in self.path.iterdir() if p.is_file())
        return CollectionInfo(
            path=str(self.path),
            documents=self._store.count(),
            chunks=self._store.chunk_count(),
            model=self.recipe.identity.name,
            dim=self.recipe.identity.dim,
            index=self.recipe.index,
            long_documents=self.recipe.long_documents.mode,
            bytes_on_disk=size,
            recipe=self.recipe.to_dict(),
        )
