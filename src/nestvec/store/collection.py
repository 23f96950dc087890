"""Collections: durable documents + vectors + recipe in one folder, searchable by text."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from nestvec.encoders import EmbeddingCache, Encoder, encoder_for
from nestvec.encoders.prompts import model_prompts
from nestvec.errors import CollectionError, InputError
from nestvec.index.spec import IndexSpec
from nestvec.locks import ReadWriteLock
from nestvec.recipe import Recipe
from nestvec.store import chunking
from nestvec.store.embedding import CollectionEmbedder
from nestvec.store.filters import compile_filter
from nestvec.store.folder import STORE_FILE, read_recipe, write_folder
from nestvec.store.fusion import Fusion
from nestvec.store.given import checked_vectors
from nestvec.store.live_index import CompactReport, LiveIndex
from nestvec.store.searcher import Searcher, check_queries
from nestvec.store.sparse import SparseSpec
from nestvec.store.sqlite import SQLiteStore
from nestvec.store.types import AddReport, Document, Hit
from nestvec.store.validate import id_text
from nestvec.store.writer import Writer
from nestvec.transforms.steps import VectorSteps

if TYPE_CHECKING:
    from nestvec.rerank.model import Reranker


@dataclass(frozen=True)
class CollectionInfo:
    path: str
    documents: int
    chunks: int
    model: str
    dim: int  # the stored vectors' (after dims=), not the model's
    model_dim: int
    index: str
    codes_trained: str  # "yes" (with advice when IVF lists are too few), or why searches are still exact
    long_documents: str
    bytes_on_disk: int
    index_ram_bytes: int
    index_status: str
    recipe: dict[str, Any]


class Collection:
    """Use `Collection.create` or `Collection.open`. Any number of threads and processes may share one.

    Searches run side by side; a write has the in-memory index to itself only while it is
    applied. Texts are embedded before any lock is taken, so a slow model never blocks others.
    """

    def __init__(self, path: Path, recipe: Recipe, store: SQLiteStore, encoder: Encoder | None) -> None:
        self.path = path
        self.recipe = recipe
        self._store = store
        self._lock = ReadWriteLock()
        self._embedder = CollectionEmbedder(path, recipe, store, self._lock, encoder)
        self._live = LiveIndex(path, recipe.index, recipe.dim, store)
        self._searcher = Searcher(store, self._live, recipe)
        self._writer = Writer(store, self._live, self._lock, self._embedder)

    # -- lifecycle ---------------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        path: str | Path,
        recipe: Recipe | str | None = None,
        *,
        model: str | Path | Encoder | None = None,
        index: str | IndexSpec | None = None,
        bm25: bool | SparseSpec | None = None,
        **values: Any,
    ) -> Collection:
        """Create an empty collection; the folder appears complete or not at all.

        `recipe` (a Recipe or its string, e.g. "minilm:dims=128:index=hnsw:codes=int8") says how
        texts become vectors; keyword arguments set or override its fields by name (see
        `nestvec.recipe.FIELDS`): `index` flat|hnsw|ivf (or a whole IndexSpec), `codes`
        float32|float16|int8|binary|rabitq, `rescore`, `dims`, `whiten`, `pca`, `long_documents`,
        `overlap`, `bm25` (or a SparseSpec)... `model` may also be a loaded Encoder.
        """
        target = Path(path).expanduser().resolve()
        if target.exists():
            raise CollectionError(f"{target} already exists. Open it with Collection.open, or choose a new path.")
        base = Recipe.parse(recipe) if isinstance(recipe, str) else recipe or Recipe()
        if isinstance(model, (str, Path)):
            values["model"] = str(model)
        if isinstance(index, str):
            values["index"] = index
        if isinstance(bm25, bool):
            values["bm25"] = bm25
        made = base.with_values(**values)
        if isinstance(index, IndexSpec):
            made = dataclasses.replace(made, index=index)
        if isinstance(bm25, SparseSpec):
            made = dataclasses.replace(made, sparse=bm25)
        if model is None or isinstance(model, (str, Path)):
            encoder = encoder_for(made.encoder)
        else:  # a loaded encoder: the recipe records where it loads from and how it computes
            encoder = model
            details = encoder.identity.details
            compute, layers = str(details.get("compute", "fp32")), details.get("layers")
            made = made.with_values(model=encoder.source, compute=compute, layers=layers)
        made = made.bound(encoder.identity, prompts=model_prompts(encoder))
        write_folder(target, made)
        return cls(target, made, SQLiteStore(target / STORE_FILE), encoder)

    @classmethod
    def open(
        cls, path: str | Path, *, model: str | Encoder | None = None, cache: str | Path | EmbeddingCache | None = None
    ) -> Collection:
        """Open an existing collection. `model` overrides where the model is found (a name or folder
        runs with the recipe's backend, compute and layers; a loaded Encoder as it is); it must match.
        `cache` (a folder or EmbeddingCache) spares re-embedding texts it has seen."""
        target = Path(path).expanduser().resolve()
        recipe = read_recipe(target)
        if model is None and cache is not None:
            model = encoder_for(recipe.encoder, cache=cache)
        if isinstance(model, (str, Path)):  # found elsewhere, run as the recipe says
            model = encoder_for(dataclasses.replace(recipe.encoder, model=str(model)), cache=cache)
        encoder = model
        if encoder is not None:
            recipe.check_encoder(encoder.identity, str(target))
        return cls(target, recipe, SQLiteStore(target / STORE_FILE), encoder)

    def close(self) -> None:
        """Checkpoint the index if it changed, then close the store."""
        with self._lock.write():
            if not self._store.read_only:
                self._live.checkpoint_if_possible()
            self._searcher.close()
            self._store.close()

    def checkpoint(self) -> bool:
        """Save the index now, so the next open loads it instead of replaying the store."""
        with self._lock.write():
            self._live.current()
            return self._live.checkpoint(force=True)

    def compact(self) -> CompactReport:
        """Rebuild the index without deleted rows (retraining codes) and reclaim the store's free pages."""
        with self._lock.write():
            report = self._live.compact()
            if self.recipe.sparse is not None:
                self._store.optimize_sparse()
            self._store.vacuum()
            return report

    def rebuild_keywords(self) -> None:
        """Rebuild the BM25 keyword index from the stored documents (`nestvec repair` does)."""
        with self._lock.write():
            self._store.rebuild_keywords()

    def __enter__(self) -> Collection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- model and index ---------------------------------------------------------------------
    @property
    def encoder(self) -> Encoder:
        """The recipe's encoder, loaded on first use and checked against the recipe."""
        return self._embedder.encoder

    def side_encoder(self, side: str) -> Encoder:
        """The encoder with the recipe's prompt for `side` (query or document) before each text."""
        return self._embedder.side_encoder(side)

    @property
    def steps(self) -> VectorSteps:
        """The recipe's vector steps (whitening or principal axes, truncation) as fitted for this collection."""
        return self._embedder.steps

    # -- writes ------------------------------------------------------------------------------
    def add(
        self, documents: Iterable[Document | dict[str, Any]], *, vectors: Any = None, batch_size: int = 256,
        progress: bool | None = None,
    ) -> AddReport:  # fmt: skip
        """Add new documents; an id already stored raises DuplicateIdError (use `upsert` to replace).

        Each batch is one transaction: once a batch returns, its documents are on disk.
        A list is validated whole before anything is written. `vectors`: one per document, made
        elsewhere by the collection's model (checked: its width, unit length); the model does not run.
        """
        return self._writer.write(documents, vectors=vectors, replace=False, batch_size=batch_size, progress=progress)

    def upsert(
        self, documents: Iterable[Document | dict[str, Any]], *, vectors: Any = None, batch_size: int = 256,
        progress: bool | None = None,
    ) -> AddReport:  # fmt: skip
        """Add documents, replacing any stored document with the same id (its chunks too)."""
        return self._writer.write(documents, vectors=vectors, replace=True, batch_size=batch_size, progress=progress)

    def add_embedded(
        self, docs: Sequence[Document | dict[str, Any]], plans: Sequence[chunking.DocPlan], vectors: np.ndarray,
        *, replace: bool = False,
    ) -> AddReport:  # fmt: skip
        """Store documents whose chunks (`plans`' spans, in order) the recipe's model already embedded
        (`vectors`, one row per chunk, before the recipe's vector steps): bulk ingest, no model run.
        The caller vouches that the vectors are the recipe's (nestvec.scale checks shards' recipes)."""
        return self._writer.add_embedded(docs, plans, vectors, replace=replace)

    def delete(self, ids: Sequence[str]) -> list[str]:
        """Delete documents by id; returns the ids that existed (unknown ids are ignored)."""
        return self._writer.delete(_ids(ids))

    # -- reads -------------------------------------------------------------------------------
    def count(self) -> int:
        return self._store.count()

    def __len__(self) -> int:
        return self.count()

    def get(self, ids: Sequence[str]) -> list[Document]:
        """Stored documents for `ids`, in the order asked; unknown ids are left out."""
        ids = _ids(ids)
        found = self._store.get(ids)
        return [Document(found[i].id, found[i].text, found[i].metadata) for i in ids if i in found]

    def documents(self, *, filter: dict[str, Any] | None = None, offset: int = 0, limit: int = 100) -> list[Document]:
        """Stored documents by id order, those matching `filter` only, `limit` from `offset` (paging)."""
        if offset < 0 or limit < 1:
            raise InputError(f"offset must be ≥ 0 and limit ≥ 1; got offset={offset}, limit={limit}.")
        where, params = compile_filter(filter) if filter is not None else (None, [])
        return [Document(d.id, d.text, d.metadata) for d in self._store.page(where, params, offset, limit)]

    def existing(self, ids: Sequence[str]) -> set[str]:
        """Which of `ids` are stored."""
        return self._store.existing_ids(_ids(ids))

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
        rerank: Reranker | str | Path | None = None,
        rerank_depth: int = 50,
    ) -> list[Hit]:
        """The k best documents for `query` (each once, with its best chunk), best first.

        `mode`: "dense" (embeddings), "sparse" (BM25 keywords) or "hybrid" (both, merged by
        `fusion`, which also carries per-query weights). `filter` applies to both sides alike.
        `rerank`: a cross-encoder (or its folder) that re-scores the first `rerank_depth` hits;
        their scores become its scores.
        """
        if rerank is None:
            return self.search_batch([query], k=k, filter=filter, mode=mode, fusion=fusion)[0]
        from nestvec.rerank.hits import as_reranker, check_depth, rerank_hits

        reranker = as_reranker(rerank)
        hits = self.search_batch([query], k=check_depth(k, rerank_depth), filter=filter, mode=mode, fusion=fusion)
        return rerank_hits(reranker, query, hits[0], k=k)

    def search_vectors(self, vectors: Any, *, k: int = 10, filter: dict[str, Any] | None = None) -> list[list[Hit]]:
        """Dense search by query vectors made elsewhere by the collection's model (checked as for
        `add(vectors=)`), one list of hits per vector; the recipe's vector steps apply as for text."""
        matrix = checked_vectors(vectors, rows=None, dim=self._embedder.model_dim, what="query vectors")
        queries = [""] * len(matrix)
        k = check_queries(["query"] * len(matrix), k, "dense")
        steps = self._embedder.fitted_steps(None)
        self._catch_up()
        with self._lock.read():
            found = steps.apply(matrix) if steps is not None else None
            return self._searcher.search(queries, found, k=k, filter=filter, mode="dense", fusion=None)

    def search_batch(
        self,
        queries: Sequence[str],
        *,
        k: int = 10,
        filter: dict[str, Any] | None = None,
        mode: str = "dense",
        fusion: Fusion | None = None,
        encoded: np.ndarray | None = None,
    ) -> list[list[Hit]]:
        """`search` for many queries at once; the queries are embedded in one batch.

        `encoded`: this collection's encoder's output for `queries`, when the caller has run it
        already (the server does, through its micro-batcher); the vector steps still apply here.
        """
        k = check_queries(queries, k, mode)
        vectors = None
        steps = self._embedder.fitted_steps(None) if mode != "sparse" else None  # unfitted: nothing stored yet
        if steps is not None and encoded is not None:
            if encoded.shape != (len(queries), self.encoder.dim):
                raise InputError(f"encoded must have shape ({len(queries)}, {self.encoder.dim}), got {encoded.shape}.")
            vectors = steps.apply(encoded)
        elif steps is not None:
            vectors = self.embed_queries(queries)  # no lock held: other searches and writes go on
        self._catch_up()
        with self._lock.read():
            return self._searcher.search(queries, vectors, k=k, filter=filter, mode=mode, fusion=fusion)

    def _catch_up(self) -> None:
        """Replay writes committed since the index last looked (by this process or another); the
        write lock only when there are some, so concurrent searches do not queue behind each other."""
        if self._live.behind():
            with self._lock.write():
                self._live.current()

    def changes(self, since: int) -> tuple[int, int, np.ndarray, Iterator[tuple[np.ndarray, np.ndarray]]]:
        """(version now, oldest version whose removals are still logged, chunk labels removed after
        `since`, batches of (labels, vectors) added after it): the change log exports replay."""
        now, removed, added = self._store.changes_since(since, self.recipe.dim)
        return now, self._store.log_floor(), removed, added

    def chunk_rows(self, labels: Sequence[int]) -> dict[int, Any]:
        """Document id, chunk number and span of each chunk label that still exists."""
        return self._store.chunk_rows(labels)

    def stored_vectors(self) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """(labels, vectors, document id of each) for every stored chunk: the durable copy."""
        return self._store.all_chunks(self.recipe.dim)

    def embed_queries(self, queries: Sequence[str]) -> np.ndarray:
        """Queries embedded exactly as this collection's documents were (model and vector steps)."""
        return self._embedder.embed(list(queries), batch_size=64, progress=False, documents=False)

    def decoded_vectors(self, labels: np.ndarray) -> np.ndarray:
        """What the index's codes of `labels` decode to (ascending labels): the vectors search compares."""
        with self._lock.write():
            index = self._live.current()
            return index.decoded(labels)

    def info(self) -> CollectionInfo:
        size = sum(p.stat().st_size for p in self.path.rglob("*") if p.is_file())
        with self._lock.write():
            index = self._live.current()
        identity = self.recipe.identity
        assert identity is not None  # a collection's recipe is always bound to its model
        return CollectionInfo(
            path=str(self.path),
            documents=self._store.count(),
            chunks=self._store.chunk_count(),
            model=identity.name,
            dim=self.recipe.dim,
            model_dim=identity.dim,
            index=self.recipe.index.describe(),
            codes_trained=_trained(index),
            long_documents=self.recipe.long_documents.mode,
            bytes_on_disk=size,
            index_ram_bytes=index.ram_bytes(),
            index_status=self._live.status,
            recipe=self.recipe.to_dict(),
        )


def _trained(index: Any) -> str:
    if not index.trained:
        return f"not yet: exact search until {index.train_at():,} vectors are stored (now {len(index):,})"
    lists, fitting = index.lists(), index.spec.lists_for(len(index))
    if index.spec.nlist is None and lists and 2 * lists <= fitting:
        # Lists trained on the first rows of a collection that has since grown: recall falls.
        return f"yes, in {lists:,} lists made for fewer rows: `nestvec compact` retrains {fitting:,}"
    return "yes"


def _ids(ids: Sequence[str] | str) -> list[str]:
    """One id or a list of them, as `add` stores them: strings, integers as their decimal text."""
    if isinstance(ids, str):
        return [ids]
    if not isinstance(ids, Iterable):
        raise InputError(f"ids must be a list of strings (or one string), got {type(ids).__name__}.")
    listed = [id_text(i) for i in ids]
    bad = next((i for i in listed if not isinstance(i, str)), None)
    if bad is not None:
        raise InputError(f"ids are strings; got {bad!r} ({type(bad).__name__}). Convert it: str(id).")
    return listed
