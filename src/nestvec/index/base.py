"""Typed search results shared by every index."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SearchResult:
    """Nearest neighbours of one query, best first. `labels` are the integers given to `add`."""

    labels: np.ndarray
    scores: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    @classmethod
    def empty(cls) -> SearchResult:
        return cls(np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32))
