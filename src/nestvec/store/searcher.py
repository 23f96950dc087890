"""Answering queries over a collection: dense, BM25 or both fused; one hit per document."""

from __future__ import annotations

import numbers
import weakref
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from nestvec.errors import CollectionError, InputError
from nestvec.index.base import SearchResult
from nestvec.index.vector_index import VectorIndex
from nestvec.recipe import Recipe
from nestvec.store.filters import compile_filter
from nestvec.store.fusion import Fusion, check_mode
from nestvec.store.hit_rows import HitRows
from nestvec.store.keywords import KeywordReader
from nestvec.store.live_index import LiveIndex
from nestvec.store.sqlite import ChunkRow, SQLiteStore
from nestvec.store.types import Chunk, Hit

Ranked = list[tuple[str, float]]  # (document id, score), best first
_POOL = ThreadPoolExecutor(max_workers=4, thread_name_prefix="nestvec-bm25")
_FUSION = Fusion()  # made once: checking a Fusion's fields costs more than a dense search's bookkeeping


class Searcher:
    def __init__(self, store: SQLiteStore, live: LiveIndex, recipe: Recipe) -> None:
        self._store, self._live, self._recipe = store, live, recipe
        # The hit rows read for one loaded index, dropped with it (held weakly: a replaced index
        # must not stay in memory until the next search).
        self._rows: tuple[weakref.ref[VectorIndex], HitRows] | None = None
        self._keywords = KeywordReader(store.path, recipe.sparse) if recipe.sparse is not None else None

    def close(self) -> None:
        if self._keywords is not None:
            self._keywords.close()

    def search(
        self,
        queries: Sequence[str],
        vectors: np.ndarray | None,
        *,
        k: int,
        filter: dict[str, Any] | None,
        mode: str,
        fusion: Fusion | None,
    ) -> list[list[Hit]]:
        """`vectors`: the queries embedded as the documents were (None when nothing is stored yet)."""
        fusion = fusion or _FUSION
        where, params = compile_filter(filter) if filter is not None else (None, [])
        depth = k if mode != "hybrid" else max(k, fusion.depth)
        rows: list[dict[str, ChunkRow]] = [{} for _ in queries]
        dense: list[Ranked] = [[] for _ in queries]
        sparse: list[Ranked] = [[] for _ in queries]
        keywords = None
        if mode != "dense":  # SQLite releases the GIL, so BM25 runs while the query is embedded
            keywords = _POOL.submit(lambda: [self._sparse(q, depth, where, params) for q in queries])
        if mode != "sparse" and vectors is not None:
            dense, rows = self._dense(vectors, depth, where, params)
        if keywords is not None:
            sparse = keywords.result()
        ranked = {"dense": dense, "sparse": sparse}.get(mode)
        if ranked is None:
            ranked = [fusion.fuse(d, s) for d, s in zip(dense, sparse, strict=True)]
        return [self._hits(r[:k], found) for r, found in zip(ranked, rows, strict=True)]

    # -- dense -------------------------------------------------------------------------------
    def _dense(
        self, vectors: np.ndarray, k: int, where: str | None, params: list[Any]
    ) -> tuple[list[Ranked], list[dict[str, ChunkRow]]]:
        allowed = self._store.labels_where(where, params) if where is not None else None
        index = self._live.loaded
        if len(index) == 0:
            return [[] for _ in vectors], [{} for _ in vectors]
        out = [
            self._best_chunks(index, v, r, k, allowed)
            for v, r in zip(vectors, index.search(vectors, k, allowed=allowed), strict=True)
        ]
        return [o[0] for o in out], [o[1] for o in out]

    def _best_chunks(
        self, index: VectorIndex, vector: np.ndarray, result: SearchResult, k: int, allowed: np.ndarray | None
    ) -> tuple[Ranked, dict[str, ChunkRow]]:
        fetch = k
        hit_rows = self._hit_rows(index)
        while True:
            rows = hit_rows(result.labels.tolist())
            best: dict[str, tuple[float, ChunkRow]] = {}
            for label, score in zip(result.labels.tolist(), result.scores.tolist(), strict=True):
                row = rows.get(label)
                if row is not None and row.doc_id not in best:
                    best[row.doc_id] = (score, row)
            if len(best) >= k or len(result) < fetch or fetch >= len(index):
                break
            fetch *= 4  # several chunks of one document crowded the top: look deeper
            result = index.search(vector[None, :], fetch, allowed=allowed)[0]
        chosen = list(best.items())[:k]
        return [(doc_id, score) for doc_id, (score, _) in chosen], {doc_id: row for doc_id, (_, row) in chosen}

    def _hit_rows(self, index: VectorIndex) -> Callable[[list[int]], dict[int, ChunkRow]]:
        """Rows from memory (hit_rows.py), or from SQLite for a store made before its hits index:
        reading that one's rows in label order would read every vector."""
        if not self._store.has_hits_index:
            return self._store.chunk_rows
        held = self._rows
        if held is None or held[0]() is not index:
            held = self._rows = (weakref.ref(index), HitRows(self._store))
        return held[1].rows

    # -- sparse ------------------------------------------------------------------------------
    def _sparse(self, query: str, k: int, where: str | None, params: list[Any]) -> Ranked:
        if self._keywords is None:
            raise CollectionError(
                "This collection has no BM25 keyword index, so mode='sparse' and 'hybrid' are unavailable. "
                "Create collections with bm25=True (the default) to get one."
            )
        return self._keywords.search(query, k, where, params)

    # -- hits --------------------------------------------------------------------------------
    def _hits(self, ranked: Ranked, rows: dict[str, ChunkRow]) -> list[Hit]:
        docs = self._store.get([doc_id for doc_id, _ in ranked])
        hits = []
        for doc_id, score in ranked:
            doc, row = docs.get(doc_id), rows.get(doc_id)
            if doc is None:
                continue  # deleted by another process between finding it and fetching it
            chunk = None
            if row is not None and self._recipe.long_documents.mode == "split":
                chunk = Chunk(row.number, row.start, row.end, doc.text[row.start : row.end])
            hits.append(Hit(doc_id, float(score), doc.text, doc.metadata, chunk))
        return hits


def check_queries(queries: Sequence[str], k: int, mode: str) -> int:
    """Refuse what cannot be searched; `k` comes back as a plain int (numpy's integers are welcome)."""
    if isinstance(queries, str):
        raise InputError("search_batch takes a list of queries; use search() for one.")
    for query in queries:
        if not isinstance(query, str) or not query.strip():
            raise InputError(f"Each query must be a non-empty string, got {query!r}.")
        try:
            query.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InputError(f"Query {query!r:.80} is not valid Unicode (unpaired surrogate).") from exc
    if not isinstance(k, numbers.Integral) or isinstance(k, bool) or k <= 0:
        raise InputError(f"k must be a positive integer, got {k!r}.")
    check_mode(mode)
    return int(k)
