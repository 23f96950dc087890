"""Row positions <-> collection labels, and which rows are still alive."""

from __future__ import annotations

import numpy as np

from nestvec.errors import InputError


class LabelTable:
    """Rows in insertion order. Labels strictly increase (the store never reuses one), so a label's
    row is a binary search away and the table costs 9 bytes per row instead of a dict entry."""

    def __init__(self, labels: np.ndarray | None = None, alive: np.ndarray | None = None) -> None:
        self._labels = np.asarray(labels if labels is not None else [], dtype=np.int64).copy()
        self._alive = np.asarray(alive if alive is not None else np.ones(len(self._labels)), dtype=bool).copy()
        self.size = len(self._labels)
        self.dead = int(self.size - self._alive[: self.size].sum())

    @property
    def labels(self) -> np.ndarray:
        return self._labels[: self.size]

    @property
    def alive(self) -> np.ndarray:
        return self._alive[: self.size]

    @property
    def alive_count(self) -> int:
        return self.size - self.dead

    def append(self, labels: np.ndarray) -> np.ndarray:
        """Give `labels` the next rows; returns those positions."""
        labels = np.asarray(labels, dtype=np.int64)
        last = self._labels[self.size - 1] if self.size else np.iinfo(np.int64).min
        if len(labels) and (labels[0] <= last or np.any(np.diff(labels) <= 0)):
            raise InputError("labels must be added in strictly increasing order, each larger than any before.")
        need = self.size + len(labels)
        if need > len(self._labels):
            capacity = max(need, 2 * len(self._labels), 1024)
            self._labels = np.resize(self._labels, capacity)
            self._alive = np.resize(self._alive, capacity)
        start = self.size
        self._labels[start:need] = labels
        self._alive[start:need] = True
        self.size = need
        return np.arange(start, need, dtype=np.int64)

    def positions(self, labels: np.ndarray) -> np.ndarray:
        """Rows of those `labels` that are present and alive, ascending."""
        labels = np.unique(np.asarray(labels, dtype=np.int64))
        if self.size == 0 or len(labels) == 0:
            return np.empty(0, dtype=np.int64)
        rows = np.searchsorted(self.labels, labels)
        rows = rows[rows < self.size]
        found = rows[np.isin(self.labels[rows], labels)]
        return found[self.alive[found]]

    def kill(self, labels: np.ndarray) -> np.ndarray:
        rows = self.positions(labels)
        self._alive[rows] = False
        self.dead += len(rows)
        return rows

    def live_rows(self) -> np.ndarray:
        return np.flatnonzero(self.alive)


def bitmap(mask: np.ndarray) -> np.ndarray:
    """Row mask packed the way faiss.IDSelectorBitmap reads it (bit i of byte i // 8, LSB first)."""
    return np.packbits(mask, bitorder="little")
