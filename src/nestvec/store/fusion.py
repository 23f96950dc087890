"""Fusing dense and BM25 rankings: reciprocal rank fusion or a weighted sum of normalized scores."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from nestvec.errors import InputError
from nestvec.registry import unknown_name_message

MODES = ("dense", "sparse", "hybrid")
METHODS = ("weighted", "rrf")


@dataclass(frozen=True)
class Fusion:
    """How hybrid search merges its two rankings, each `depth` documents deep.

    weighted: dense_weight · dense + (1 - dense_weight) · bm25, each min-max normalized over its
    own candidates (a document missing from one side scores 0 there). rrf: Σ weight / (rrf_k + rank).
    The defaults were chosen on the development sets under tests/data/hybrid, never on
    msmarco-5k's test judgments (see bench/hybrid.py).
    """

    method: str = "weighted"
    dense_weight: float = 0.6
    rrf_k: int = 60
    depth: int = 100

    def __post_init__(self) -> None:
        from nestvec.recipe.fields import check_part

        check_part("search", self)

    def fuse(self, dense: Sequence[tuple[str, float]], sparse: Sequence[tuple[str, float]]) -> list[tuple[str, float]]:
        """Both inputs best first; returns every candidate, best first (ties by id)."""
        weights = (self.dense_weight, 1.0 - self.dense_weight)
        fused: dict[str, float] = {}
        for ranking, weight in zip((dense, sparse), weights, strict=True):
            if self.method == "rrf":
                for rank, (doc_id, _) in enumerate(ranking, start=1):
                    fused[doc_id] = fused.get(doc_id, 0.0) + weight / (self.rrf_k + rank)
            else:
                for doc_id, score in _min_max(ranking):
                    fused[doc_id] = fused.get(doc_id, 0.0) + weight * score
        return sorted(fused.items(), key=lambda item: (-item[1], item[0]))


def _min_max(ranking: Sequence[tuple[str, float]]) -> list[tuple[str, float]]:
    if not ranking:
        return []
    scores = [s for _, s in ranking]
    low, high = min(scores), max(scores)
    if high == low:
        return [(doc_id, 1.0) for doc_id, _ in ranking]
    return [(doc_id, (s - low) / (high - low)) for doc_id, s in ranking]


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise InputError(unknown_name_message("search mode", mode, list(MODES)))
    return mode
