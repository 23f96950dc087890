"""Counts of neighbouring tokens and the typo channel: what lets a lexicon choose by context.

A misspelt "yong" is one edit from "young", "long" and "song"; "A hose is running" holds a
real word one edit from "horse". Which one was meant depends on how likely each candidate is
next to its neighbours (bigram counts of the lexicon's texts, additively smoothed towards the
word's own frequency) and on how likely the typo is from it (the channel: each kind of edit
equally likely, each edit of a kind equally likely — so a swap, with a handful of ways to
happen, counts for much more than one of the 25 x L substitutions).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from itertools import pairwise
from pathlib import Path

import numpy as np
from safetensors.numpy import load, save_file

FILE = "bigrams.safetensors"
_SMOOTHING = 5.0  # pseudo-counts pulling a bigram estimate towards the unigram one


def channel(intended: str, typed: str) -> float:
    """P(`typed` | `intended`) for two words one edit apart."""
    n = len(intended)
    if len(typed) == n - 1:
        return 0.25 / n
    if len(typed) == n + 1:
        return 0.25 / (26 * (n + 1))
    if sum(a != b for a, b in zip(intended, typed, strict=True)) == 1:
        return 0.25 / (25 * n)
    return 0.25 / max(n - 1, 1)


class Bigrams:
    """Sorted `first * width + second` keys of token ids (the last id stands for every other token)."""

    def __init__(self, keys: np.ndarray, counts: np.ndarray, unigrams: np.ndarray) -> None:
        self.keys, self.counts, self.unigrams = keys, counts, unigrams
        self.width = len(unigrams)
        self.total = float(unigrams.sum()) or 1.0

    @classmethod
    def count(cls, sentences: Iterable[Sequence[int]], unigrams: Sequence[int]) -> Bigrams:
        """The pairs of `sentences` (token ids); `unigrams` counts each id in them, already counted."""
        width = len(unigrams)
        pairs: Counter[int] = Counter()
        for ids in sentences:
            pairs.update(a * width + b for a, b in pairwise(ids))
        keys = np.fromiter(pairs.keys(), np.int64, len(pairs))
        counts = np.fromiter(pairs.values(), np.int64, len(pairs))
        order = np.argsort(keys)
        return cls(keys[order], counts[order].astype(np.int32), np.asarray(unigrams, dtype=np.int64))

    @classmethod
    def unigrams_only(cls, counts: Sequence[int]) -> Bigrams:
        return cls(np.zeros(0, np.int64), np.zeros(0, np.int32), np.asarray(counts, dtype=np.int64))

    def pair_counts(self, first: np.ndarray, second: np.ndarray) -> np.ndarray:
        if not len(self.keys):
            return np.zeros(len(first))
        # sorted and unique, the lookups walk the keys in order: far fewer cache misses in a big table
        wanted, back = np.unique(first * self.width + second, return_inverse=True)
        at = np.minimum(np.searchsorted(self.keys, wanted), len(self.keys) - 1)
        return np.where(self.keys[at] == wanted, self.counts[at], 0).astype(np.float64)[back.reshape(-1)]

    def log_fit(self, ids: np.ndarray, before: np.ndarray, after: np.ndarray) -> np.ndarray:
        """log P(id | before) + log P(after | id) - log P(after), elementwise; -1: no neighbour there."""
        return self._fit(ids, before, after, self.pair_counts)

    def log_fit_bound(self, ids: np.ndarray, before: np.ndarray, after: np.ndarray) -> np.ndarray:
        """An upper bound of `log_fit` from unigrams alone (a pair is seen no more than either word)."""
        return self._fit(ids, before, after, lambda a, b: np.minimum(self.unigrams[a], self.unigrams[b]) * 1.0)

    def _fit(
        self,
        ids: np.ndarray,
        before: np.ndarray,
        after: np.ndarray,
        pairs: Callable[[np.ndarray, np.ndarray], np.ndarray],
    ) -> np.ndarray:
        prior = (self.unigrams[ids] + 0.5) / self.total
        left, right = np.maximum(before, 0), np.maximum(after, 0)
        given = (pairs(left, ids) + _SMOOTHING * prior) / (self.unigrams[left] + _SMOOTHING)
        score = np.log(np.where(before >= 0, given, prior))
        p_after = (self.unigrams[right] + 0.5) / self.total
        follows = (pairs(ids, right) + _SMOOTHING * p_after) / (self.unigrams[ids] + _SMOOTHING)
        return score + np.where(after >= 0, np.log(follows / p_after), 0.0)

    def save(self, folder: Path) -> None:
        tensors = {"keys": self.keys, "counts": self.counts, "unigrams": self.unigrams}
        save_file(tensors, str(folder / FILE))

    @classmethod
    def from_bytes(cls, raw: bytes) -> Bigrams:
        """What `save` wrote, read by the caller (which also hashes the bytes)."""
        data = load(raw)
        return cls(data["keys"], data["counts"], data["unigrams"])
