"""The Index protocol: vectors in, typed nearest-neighbour results out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class SearchResult:
    """Nearest neighbours of one query, best first. `labels` are the integers given to `add`."""

    labels: np.ndarray
    scores: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)


class Index(Protocol):
    """An in-memory search structure over labelled vectors; the Store stays the source of truth."""

    dim: int

    def __len__(self) -> int: ...

    def add(self, labels: np.ndarray, vectors: np.ndarray) -> None: ...

    def remove(self, labels: np.ndarray) -> None: ...

    def search(self, query: np.ndarray, k: int, *, allowed: np.ndarray | None = None) -> SearchResult:
        """Top-k by score; `allowed` restricts results to these labels (metadata filters)."""
        ...
