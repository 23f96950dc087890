"""Re-scoring a search's candidates with a cross-encoder: the first stage finds, the second orders."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

from nestvec.errors import InputError
from nestvec.rerank.model import Reranker, load_reranker
from nestvec.store.types import Hit

DEFAULT_DEPTH = 50  # candidates re-scored per query: a cross-encoder pass each


def as_reranker(reranker: Reranker | str | Path) -> Reranker:
    return reranker if isinstance(reranker, Reranker) else load_reranker(reranker)


def check_depth(k: int, depth: int) -> int:
    """How many candidates to fetch: `depth`, and never fewer than `k`."""
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
        raise InputError(f"rerank_depth must be a positive integer (candidates re-scored), got {depth!r}.")
    return max(k, depth)


def rerank_hits(reranker: Reranker, query: str, hits: Sequence[Hit], *, k: int) -> list[Hit]:
    """`hits` re-scored by `reranker` against `query` (each document by the chunk that matched),
    best first, the first `k`; a hit's score becomes the reranker's."""
    if not hits:
        return []
    texts = [h.chunk.text if h.chunk is not None and h.chunk.text else h.text for h in hits]
    ranked = reranker.rank(query, texts, top_k=k)
    return [dataclasses.replace(hits[r.index], score=r.score) for r in ranked]
