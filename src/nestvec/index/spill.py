"""Spilled IVF lists: vectors near a list boundary are stored in a second list as well.

An IVF search only sees the lists it probes, so a true neighbour whose nearest centroid is not
among the query's best lists is lost whatever the codes. Giving the vectors closest to a
boundary (the smallest gap between their two best centroid scores) a second entry lets a
query find them from either side, so fewer lists reach the same recall. The second list is
chosen as in SOAR (Sun et al., 2023): among the nearest centroids, the one whose residual is
short and least parallel to the primary residual, so the two entries fail on different queries.
"""

from __future__ import annotations

from typing import Any

import numpy as np

_CANDIDATES = 8  # nearest centroids considered for the second list
_SOAR_WEIGHT = 1.0  # λ: the penalty on a second residual parallel to the first


class Spill:
    """The fitted rule (a score-gap threshold) and the count of second entries faiss holds."""

    def __init__(self, threshold: float, entries: int = 0) -> None:
        self.threshold, self.entries = threshold, entries

    @classmethod
    def fit(cls, index: Any, sample: np.ndarray, percent: int) -> Spill:
        """The gap below which `percent`% of `sample` gets a second entry."""
        scores, _ = index.quantizer.search(sample, 2)
        return cls(float(np.quantile(scores[:, 0] - scores[:, 1], percent / 100)))

    def add(self, index: Any, vectors: np.ndarray, rows: np.ndarray) -> None:
        """Second entries for those of `vectors` (already in their nearest list) near a boundary."""
        scores, near = index.quantizer.search(vectors, min(_CANDIDATES, index.nlist))
        if near.shape[1] < 2:
            return
        pick = np.flatnonzero(scores[:, 0] - scores[:, 1] <= self.threshold)
        if not len(pick):
            return
        centroids = index.quantizer.reconstruct_n(0, index.nlist)
        second = _soar_lists(vectors[pick], centroids, near[pick])
        # The forced assignment below needs a positive score with the chosen centroid.
        keep = np.einsum("ij,ij->i", vectors[pick], centroids[second]) > 0
        pick, second = pick[keep], second[keep]
        _add_to_lists(index, centroids, vectors[pick], rows[pick], second)
        self.entries += len(pick)

    def removed(self, entries: int) -> None:
        self.entries -= entries

    def to_dict(self) -> dict[str, float | int]:
        return {"threshold": self.threshold, "entries": self.entries}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Spill:
        return cls(float(data["threshold"]), int(data["entries"]))


def _soar_lists(vectors: np.ndarray, centroids: np.ndarray, near: np.ndarray) -> np.ndarray:
    """Per vector, the candidate list (not its nearest) with the smallest SOAR loss."""
    first = vectors - centroids[near[:, 0]]
    first_sq = np.maximum(np.einsum("ij,ij->i", first, first), 1e-12)
    best = near[:, 1].copy()
    best_loss = np.full(len(vectors), np.inf, dtype=np.float32)
    for j in range(1, near.shape[1]):
        valid = near[:, j] >= 0
        other = vectors - centroids[np.maximum(near[:, j], 0)]
        loss = np.einsum("ij,ij->i", other, other) + _SOAR_WEIGHT * np.einsum("ij,ij->i", first, other) ** 2 / first_sq
        better = valid & (loss < best_loss)
        best[better], best_loss[better] = near[better, j], loss[better]
    return best


def _add_to_lists(index: Any, centroids: np.ndarray, vectors: np.ndarray, rows: np.ndarray, lists: np.ndarray) -> None:
    """faiss.add_with_ids into chosen lists rather than the nearest ones.

    The fast-scan IVF takes no precomputed list numbers (its add_core corrupts the heap), so the
    coarse quantizer is swapped for one where only the target centroid scores above zero: faiss
    then assigns each group to its target and encodes the residual against the true centroid.
    """
    import faiss

    nlist, dim = centroids.shape
    forced = faiss.IndexFlatIP(dim)
    forced.add(np.zeros_like(centroids))
    rows_view = faiss.rev_swig_ptr(forced.get_xb(), nlist * dim).reshape(nlist, dim)
    order = np.argsort(lists, kind="stable")
    bounds = np.searchsorted(lists[order], np.arange(nlist + 1))
    original = index.quantizer
    index.quantizer = forced
    try:
        for target in np.flatnonzero(np.diff(bounds)):
            group = order[bounds[target] : bounds[target + 1]]
            rows_view[target] = centroids[target]
            index.add_with_ids(np.ascontiguousarray(vectors[group]), np.ascontiguousarray(rows[group]))
            rows_view[target] = 0
    finally:
        index.quantizer = original
