"""Exact inner-product search over float32 vectors with one BLAS matrix-vector product."""

from __future__ import annotations

import numpy as np

from nestvec.errors import InputError
from nestvec.index.base import SearchResult


class FlatIndex:
    """Exact search. Removal swaps the last row into the hole, so memory stays dense."""

    kind = "flat"

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self._vectors = np.empty((0, dim), dtype=np.float32)
        self._labels = np.empty(0, dtype=np.int64)
        self._size = 0
        self._row_of: dict[int, int] = {}

    def __len__(self) -> int:
        return self._size

    def _reserve(self, extra: int) -> None:
        need = self._size + extra
        if need <= len(self._labels):
            return
        capacity = max(need, 2 * len(self._labels), 1024)
        vectors = np.empty((capacity, self.dim), dtype=np.float32)
        labels = np.empty(capacity, dtype=np.int64)
        vectors[: self._size] = self._vectors[: self._size]
        labels[: self._size] = self._labels[: self._size]
        self._vectors, self._labels = vectors, labels

    def add(self, labels: np.ndarray, vectors: np.ndarray) -> None:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.dim or len(vectors) != len(labels):
            raise InputError(f"expected {len(labels)} vectors of dimension {self.dim}, got shape {vectors.shape}.")
        self.remove(np.asarray(labels))
        self._reserve(len(labels))
        start = self._size
        self._vectors[start : start + len(labels)] = vectors
        self._labels[start : start + len(labels)] = labels
        for offset, label in enumerate(np.asarray(labels).tolist()):
            self._row_of[int(label)] = start + offset
        self._size += len(labels)

    def remove(self, labels: np.ndarray) -> None:
        for label in np.asarray(labels).tolist():
            row = self._row_of.pop(int(label), None)
            if row is None:
                continue
            last = self._size - 1
            if row != last:
                moved = int(self._labels[last])
                self._vectors[row] = self._vectors[last]
                self._labels[row] = moved
                self._row_of[moved] = row
            self._size -= 1

    def search(self, query: np.ndarray, k: int, *, allowed: np.ndarray | None = None) -> SearchResult:
        query = np.asarray(query, dtype=np.float32).reshape(-1)
        if query.shape[0] != self.dim:
            raise InputError(f"query has dimension {query.shape[0]}, the index holds dimension {self.dim}.")
        rows = np.arange(self._size) if allowed is None else self._rows(allowed)
        if k <= 0 or len(rows) == 0:
            return SearchResult(np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32))
        scores = self._vectors[rows] @ query if allowed is not None else self._vectors[: self._size] @ query
        k = min(k, len(rows))
        top = np.argpartition(-scores, k - 1)[:k] if k < len(rows) else np.arange(len(rows))
        top = top[np.lexsort((self._labels[rows[top]], -scores[top]))]
        return SearchResult(self._labels[rows[top]].copy(), scores[top].astype(np.float32))

    def _rows(self, allowed: np.ndarray) -> np.ndarray:
        rows = [self._row_of[label] for label in np.asarray(allowed).tolist() if label in self._row_of]
        return np.asarray(sorted(rows), dtype=np.int64)
