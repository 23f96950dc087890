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
from nestvec.encoders import DEFAULT_MODEL, EmbeddingCache, Encoder, load_encoder
from nestvec.errors import CollectionError, DuplicateIdError, InputError
from nestvec.files import config_header, fsync_dir, read_config, write_json_atomic
from nestvec.index.spec import IndexSpec
from nestvec.store import chunking
from nestvec.store.fusion import Fusion
from nestvec.store.live_index import CompactReport, LiveIndex
from nestvec.store.recipe import Recipe
from nestvec.store.searcher import Searcher
from nestvec.store.sparse import SparseSpec
from nestvec.store.sqlite import SQLiteStore, StoredChunk, StoredDoc
from nestvec.store.types import AddReport, Document, Hit
from nestvec.store.validate import as_document, check_unique
from nestvec.transforms import Truncate

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
    index_ram_bytes: int
    index_status: str
    recipe: dict[str, Any]


class Collection:
    """Use `Collection.create` or `Collection.open`; one writer process at a time."""

    def __init__(self, path: Path, recipe: Recipe, store: SQLiteStore, encoder: Encoder | None) -> None:
        self.path = path
        self.recipe = recipe
        self._store = store
        self._encoder = encoder
        self._live = LiveIndex(path, recipe.index, recipe.dim, store)
        self._searcher = Searcher(store, self._live, recipe, self.embed_queries)
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
        index: str | IndexSpec = "flat",
        precision: str = "float32",
        dims: int | None = None,
        rescore: int | None = None,
        bm25: bool | SparseSpec = True,
    ) -> Collection:
        """Create an empty collection; the folder appears complete or not at all.

        `index` is the search strategy: "flat" (exact scan), "hnsw" (graph) or "ivf" (inverted
        lists), over `precision` codes: float32, float16, int8 (calibrated per dimension),
        binary (sign bits) or rabitq (sign bits of the rotated vector, scored against the float
        query; flat or ivf). Below float32 the best k × `rescore` candidates (4 by default) are
        re-ranked with float vectors kept in a memory-mapped file. `dims` truncates documents and
        queries alike (Matryoshka). An IndexSpec gives every knob at once. `bm25` keeps a keyword
        index for mode="sparse"/"hybrid" search (a SparseSpec sets stemming and stop words).
        """
        target = Path(path).expanduser().resolve()
        if target.exists():
            raise CollectionError(f"{target} already exists. Open it with Collection.open, or choose a new path.")
        if rescore is not None and rescore < 0:
            raise InputError(f"rescore must be ≥ 0 (0 turns rescoring off), got {rescore}.")
        spec = index if isinstance(index, IndexSpec) else IndexSpec.make(index, precision, rescore=rescore)
        encoder = load_encoder(model) if isinstance(model, (str, Path)) else model
        ref = encoder.source
        if dims is not None and not 1 <= dims <= encoder.dim:
            raise InputError(f"dims must be between 1 and the model's {encoder.dim}, got {dims}.")
        long_docs = chunking.LongDocuments(long_documents, overlap)
        sparse = bm25 if isinstance(bm25, SparseSpec) else (SparseSpec() if bm25 else None)
        recipe = Recipe(ref, encoder.identity, spec, long_docs, dims, sparse)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.creating-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            tmp.mkdir()
            SQLiteStore(tmp / STORE_FILE, create=True, sparse=sparse).close()
            write_json_atomic(tmp / "config.json", {**config_header("collection"), "recipe": recipe.to_dict()})
            os.rename(tmp, target)
            fsync_dir(target.parent)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return cls(target, recipe, SQLiteStore(target / STORE_FILE), encoder)

    @classmethod
    def open(
        cls, path: str | Path, *, model: str | Encoder | None = None, cache: str | Path | EmbeddingCache | None = None
    ) -> Collection:
        """Open an existing collection. `model` overrides where the model is found; it must match.
        `cache` (a folder or EmbeddingCache) spares re-embedding texts it has seen."""
        target = Path(path).expanduser().resolve()
        config = read_config(target, "collection")
        try:
            recipe = Recipe.from_dict(config["recipe"])
        except (KeyError, TypeError, ValueError) as exc:
            raise CollectionError(f"{target}/config.json has a malformed recipe ({exc!r}).") from exc
        if model is None and cache is not None:
            model = _recipe_encoder(recipe, cache)
        encoder = load_encoder(model, cache=cache) if isinstance(model, (str, Path)) else model
        if encoder is not None:
            recipe.check_encoder(encoder.identity, str(target))
        return cls(target, recipe, SQLiteStore(target / STORE_FILE), encoder)

    def close(self) -> None:
        """Checkpoint the index if it changed, then close the store."""
        with self._lock:
            self._live.checkpoint()
            self._searcher.close()
            self._store.close()

    def checkpoint(self) -> bool:
        """Save the index now, so the next open loads it instead of replaying the store."""
        with self._lock:
            self._live.current()
            return self._live.checkpoint(force=True)

    def compact(self) -> CompactReport:
        """Rebuild the index without deleted rows (retraining codes) and reclaim the store's free pages."""
        with self._lock:
            report = self._live.compact()
            if self.recipe.sparse is not None:
                self._store.optimize_sparse()
            self._store.vacuum()
            return report

    def __enter__(self) -> Collection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- model and index ---------------------------------------------------------------------
    @property
    def encoder(self) -> Encoder:
        """The recipe's encoder, loaded on first use and checked against the recipe."""
        if self._encoder is None:
            encoder = _recipe_encoder(self.recipe)
            self.recipe.check_encoder(encoder.identity, str(self.path))
            self._encoder = encoder
        return self._encoder

    def _embed(self, texts: list[str], *, batch_size: int = 32, progress: bool | None = None) -> np.ndarray:
        """Documents and queries take exactly this path, so they are always comparable."""
        vectors = self.encoder.encode(texts, batch_size=batch_size, progress=progress)
        if self.recipe.dims is not None and len(vectors):
            vectors = Truncate(self.recipe.dims).apply(vectors)
        return vectors

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
            self._live.current()
            self._live.apply(self._store.write(stored, chunks), vectors)
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
            self._live.current()
            found, change = self._store.delete(list(ids))
            self._live.apply(change, np.empty((0, self.recipe.dim), dtype=np.float32))
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

    def search(
        self,
        query: str,
        *,
        k: int = 10,
        filter: dict[str, Any] | None = None,
        mode: str = "dense",
        fusion: Fusion | None = None,
    ) -> list[Hit]:
        """The k best documents for `query` (each once, with its best chunk), best first.

        `mode`: "dense" (embeddings), "sparse" (BM25 keywords) or "hybrid" (both, merged by
        `fusion`, which also carries per-query weights). `filter` applies to both sides alike.
        """
        return self.search_batch([query], k=k, filter=filter, mode=mode, fusion=fusion)[0]

    def search_batch(
        self,
        queries: Sequence[str],
        *,
        k: int = 10,
        filter: dict[str, Any] | None = None,
        mode: str = "dense",
        fusion: Fusion | None = None,
    ) -> list[list[Hit]]:
        """`search` for many queries at once; the queries are embedded in one batch."""
        with self._lock:
            return self._searcher.search(queries, k=k, filter=filter, mode=mode, fusion=fusion)

    def stored_vectors(self) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """(labels, vectors, document id of each) for every stored chunk: the durable copy."""
        return self._store.all_chunks(self.recipe.dim)

    def embed_queries(self, queries: Sequence[str]) -> np.ndarray:
        """Queries embedded exactly as this collection's documents were (model and dims)."""
        return self._embed(list(queries), batch_size=64, progress=False)

    def info(self) -> CollectionInfo:
        size = sum(p.stat().st_size for p in self.path.rglob("*") if p.is_file())
        with self._lock:
            index = self._live.current()
        return CollectionInfo(
            path=str(self.path),
            documents=self._store.count(),
            chunks=self._store.chunk_count(),
            model=self.recipe.identity.name,
            dim=self.recipe.identity.dim,
            index=self.recipe.index.describe(),
            long_documents=self.recipe.long_documents.mode,
            bytes_on_disk=size,
            index_ram_bytes=index.ram_bytes(),
            index_status=self._live.status,
            recipe=self.recipe.to_dict(),
        )


def _recipe_encoder(recipe: Recipe, cache: str | Path | EmbeddingCache | None = None) -> Encoder:
    # A recipe made with a low-precision backend reopens with that precision.
    precision = str(recipe.identity.details.get("precision", "fp32"))
    return load_encoder(recipe.model, precision=precision, cache=cache)
