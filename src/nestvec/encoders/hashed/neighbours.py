"""The known words one edit from a word, and how likely the typo is from each (SymSpell lookup).

A deletion, insertion, substitution or transposition leaves the two words with a common
one-letter deletion (or one is the other's deletion), so a dictionary from deletions to words
finds every candidate without generating all edits. Finding them is most of the cost of mending
a text; a known word's neighbours never change, so a lexicon saves them for every known word
(`neighbours.safetensors`) and only words it has never seen are looked up at encode time.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np
from safetensors.numpy import load, save_file

from nestvec.encoders.hashed.bigrams import channel
from nestvec.errors import InputError

FILE = "neighbours.safetensors"
_MIN_LENGTH = 2  # one-letter words have too many neighbours one edit away to guess from
_LETTERS = re.compile(r"[a-z]+")
Found = tuple[np.ndarray, np.ndarray]  # (ids of the known words, log P(typed | each meant)), by word order


def plain(word: str) -> bool:
    return len(word) >= _MIN_LENGTH and _LETTERS.fullmatch(word) is not None


def _deletions(word: str) -> set[str]:
    return {word[:i] + word[i + 1 :] for i in range(len(word))}


def _one_edit(a: str, b: str) -> bool:
    """Whether `b` is `a` with one letter deleted, inserted, replaced, or two neighbours swapped."""
    if abs(len(a) - len(b)) > 1:
        return False
    if len(a) != len(b):
        short, long = (a, b) if len(a) < len(b) else (b, a)
        return any(long[:i] + long[i + 1 :] == short for i in range(len(long)))
    diff = [i for i in range(len(a)) if a[i] != b[i]]
    if len(diff) == 1:
        return True
    return len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]]


class Neighbours:
    def __init__(self, words: Sequence[str], index: dict[str, int], stored: dict[str, np.ndarray] | None = None):
        self.words, self.index = words, index
        by_deletion: dict[str, list[str]] = {}
        for word in words:
            if plain(word):
                for variant in _deletions(word):
                    by_deletion.setdefault(variant, []).append(word)
        # tuples of strings leave the garbage collector's lists: a million lists were scanned on every full pass
        self._by_deletion = {variant: tuple(found) for variant, found in by_deletion.items()}
        self._stored = stored
        self.of = lru_cache(maxsize=1 << 16)(self._of)

    def _of(self, lower: str) -> Found:
        known = self.index.get(lower)
        if known is not None and self._stored is not None:
            start, end = self._stored["offsets"][known : known + 2]
            return self._stored["ids"][start:end], self._stored["log_channel"][start:end]
        return self.look_up(lower)

    def look_up(self, lower: str) -> Found:
        found = set(self._by_deletion.get(lower, ()))  # the typo dropped a letter
        for variant in _deletions(lower):
            if variant in self.index and plain(variant):  # the typo added a letter
                found.add(variant)
            found.update(self._by_deletion.get(variant, ()))  # a letter replaced or two swapped
        found.discard(lower)
        near = sorted(w for w in found if _one_edit(lower, w))
        ids = np.array([self.index[w] for w in near], dtype=np.int64)
        return ids, np.log([channel(w, lower) for w in near]) if near else np.zeros(0)

    def save(self, folder: Path) -> None:
        """Every known word's neighbours, looked up once (a few seconds for 100,000 words)."""
        found = [self.look_up(word) if plain(word) else (np.zeros(0, np.int64), np.zeros(0)) for word in self.words]
        sizes = np.fromiter((len(ids) for ids, _ in found), np.int64, len(found))
        tensors = {
            "offsets": np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64),
            "ids": np.concatenate([ids for ids, _ in found] or [np.zeros(0, np.int64)]).astype(np.int64),
            "log_channel": np.concatenate([lc for _, lc in found] or [np.zeros(0)]).astype(np.float64),
        }
        save_file(tensors, str(folder / FILE))

    @staticmethod
    def read(path: Path, words: int) -> dict[str, np.ndarray]:
        stored = load(path.read_bytes())
        offsets = stored.get("offsets")
        if offsets is None or len(offsets) != words + 1 or offsets[-1] != len(stored.get("ids", ())):
            raise InputError(
                f"{path} does not list the neighbours of the lexicon's {words} words; "
                "delete it (it is rebuilt by Lexicon.save) or retrain the model."
            )
        return stored
