"""Row positions <-> collection labels, and which rows are still alive."""

from __future__ import annotations

import numpy as np

from nestvec.errors import InputError


class LabelTable:
    """Rows in insertion order, each holding a collection label; labels only grow (the store never
    reuses one), so a label's row is a binary search away and the table costs 9 bytes per row
    instead of a dict entry. A reordered index (index/layout.py) renumbers its rows: those rows
    then hold labels in any order, and a sorted lookup of them (16 bytes a row) is built the first
    time a label's row is asked for (deletes, filters); rows appended after stay ascending."""

    def __init__(self, labels: np.ndarray | None = None, alive: np.ndarray | None = None) -> None:
        self._labels = np.asarray(labels if labels is not None else [], dtype=np.int64).copy()
        self._alive = np.asarray(alive if alive is not None else np.ones(len(self._labels)), dtype=bool).copy()
        self.size = len(self._labels)
        self.dead = int(self.size - self._alive[: self.size].sum())
        held = self._labels[: self.size]
        self._top = int(held.max()) if self.size else np.iinfo(np.int64).min  # the highest label held
        # Rows below this one may hold labels in any order; those from it on ascend, above them all.
        self._sorted_from = 0 if bool(np.all(held[1:] > held[:-1])) else self.size
        self._lookup: tuple[np.ndarray, np.ndarray] | None = None  # (those rows' labels ascending, their rows)

    @property
    def labels(self) -> np.ndarray:
        return self._labels[: self.size]

    @property
    def alive(self) -> np.ndarray:
        return self._alive[: self.size]

    @property
    def alive_count(self) -> int:
        return self.size - self.dead

    @property
    def reordered_rows(self) -> int:
        """Rows renumbered by the last reordering (0: the table is in label order)."""
        return self._sorted_from

    def append(self, labels: np.ndarray) -> np.ndarray:
        """Give `labels` the next rows; returns those positions."""
        labels = np.asarray(labels, dtype=np.int64)
        if len(labels) and (labels[0] <= self._top or np.any(np.diff(labels) <= 0)):
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
        if len(labels):
            self._top = int(labels[-1])
        return np.arange(start, need, dtype=np.int64)

    def permute(self, order: np.ndarray) -> None:
        """Renumber the rows: new row i is old row `order[i]` (a permutation of every row)."""
        self._labels, self._alive = self.labels[order], self.alive[order]
        self._sorted_from, self._lookup = self.size, None

    def positions(self, labels: np.ndarray) -> np.ndarray:
        """Rows of those `labels` that are present and alive, in ascending label order."""
        labels = np.unique(np.asarray(labels, dtype=np.int64))
        if self.size == 0 or len(labels) == 0:
            return np.empty(0, dtype=np.int64)
        cut = self._sorted_from
        found = [cut + _find(self._labels[cut : self.size], labels)]
        if cut:
            keys, rows = self._prefix_lookup()
            found.insert(0, rows[_find(keys, labels)])
        rows = np.concatenate(found)  # the prefix's labels all sit below the ascending rest's
        return rows[self.alive[rows]]

    def _prefix_lookup(self) -> tuple[np.ndarray, np.ndarray]:
        if self._lookup is None:
            rows = np.argsort(self._labels[: self._sorted_from], kind="stable")
            self._lookup = (self._labels[rows], rows)
        return self._lookup

    def kill(self, labels: np.ndarray) -> np.ndarray:
        rows = self.positions(labels)
        self._alive[rows] = False
        self.dead += len(rows)
        return rows

    def live_rows(self) -> np.ndarray:
        return np.flatnonzero(self.alive)


def _find(ascending: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Positions in `ascending` of those of `labels` (ascending) that it holds."""
    at = np.searchsorted(ascending, labels)
    inside = at < len(ascending)
    at, labels = at[inside], labels[inside]
    return at[ascending[at] == labels]


def bitmap(mask: np.ndarray) -> np.ndarray:
    """Row mask packed the way faiss.IDSelectorBitmap reads it (bit i of byte i // 8, LSB first)."""
    return np.packbits(mask, bitorder="little")
