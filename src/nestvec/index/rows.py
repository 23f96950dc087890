"""Dense row storage shared by the scan indexes: labels, codes, O(1) removal by swapping."""

from __future__ import annotations

import numpy as np

from nestvec.errors import InputError
from nestvec.index.base import SearchResult


class RowIndex:
    """Subclasses say how vectors become codes (`_encode`) and how codes score a query (`_scores`)."""

    code_dtype: type = np.float32

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self._codes: np.ndarray = np.empty((0, self.code_width()), dtype=self.code_dtype)
        self._labels = np.empty(0, dtype=np.int64)
        self._size = 0
        self._row_of: dict[int, int] = {}

    def code_width(self) -> int:
        return self.dim

    def _encode(self, vectors: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _scores(self, query: np.ndarray, codes: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def __len__(self) -> int:
        return self._size

    @property
    def nbytes(self) -> int:
        """Bytes the codes of the stored vectors occupy."""
        return self._size * self._codes.shape[1] * self._codes.itemsize

    def _reserve(self, extra: int) -> None:
        need = self._size + extra
        if need <= len(self._labels):
            return
        capacity = max(need, 2 * len(self._labels), 1024)
        codes: np.ndarray = np.empty((capacity, self._codes.shape[1]), dtype=self.code_dtype)
        labels = np.empty(capacity, dtype=np.int64)
        codes[: self._size] = self._codes[: self._size]
        labels[: self._size] = self._labels[: self._size]
        self._codes, self._labels = codes, labels

    def add(self, labels: np.ndarray, vectors: np.ndarray) -> None:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.dim or len(vectors) != len(labels):
            raise InputError(f"expected {len(labels)} vectors of dimension {self.dim}, got shape {vectors.shape}.")
        self.remove(np.asarray(labels))
        self._reserve(len(labels))
        start = self._size
        self._codes[start : start + len(labels)] = self._encode(vectors)
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
                self._codes[row] = self._codes[last]
                self._labels[row] = moved
                self._row_of[moved] = row
            self._size -= 1

    def search(self, query: np.ndarray, k: int, *, allowed: np.ndarray | None = None) -> SearchResult:
        query = np.asarray(query, dtype=np.float32).reshape(-1)
        if query.shape[0] != self.dim:
            raise InputError(f"query has dimension {query.shape[0]}, the index holds dimension {self.dim}.")
        rows = None if allowed is None else self._rows(allowed)
        count = self._size if rows is None else len(rows)
        if k <= 0 or count == 0:
            return SearchResult(np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32))
        codes = self._codes[: self._size] if rows is None else self._codes[rows]
        labels = self._labels[: self._size] if rows is None else self._labels[rows]
        scores = self._scores(query, codes)
        k = min(k, count)
        top = np.argpartition(-scores, k - 1)[:k] if k < count else np.arange(count)
        top = top[np.lexsort((labels[top], -scores[top]))]
        return SearchResult(labels[top].copy(), scores[top].astype(np.float32))

    def _rows(self, allowed: np.ndarray) -> np.ndarray:
        rows = [self._row_of[label] for label in np.asarray(allowed).tolist() if label in self._row_of]
        return np.asarray(sorted(rows), dtype=np.int64)
