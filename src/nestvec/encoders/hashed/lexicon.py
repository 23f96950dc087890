"""A token list that mends one-letter typos before hashing (SymSpell lookup, noisy-channel choice).

Hashed features of a misspelt word share only part of the word's features, and its whole-word
feature lands on a row trained for some other word. When a hash model carries a lexicon (the
frequent tokens of unlabeled texts and their bigram counts, encoders/bigrams.py), each word is
checked against its one-edit neighbours: a deletion, insertion, substitution or transposition
leaves the two words with a common one-letter deletion (or one is the other's deletion), so a
dictionary from deletions to words finds every candidate without generating all edits. An
unknown word becomes the neighbour that best fits its two neighbours and the typo; a known
word is replaced only when a neighbour is far likelier there ("a hose is running" → "horse"):
real-word typos cost STS-B more than all the others together.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

from nestvec.encoders.hashed.bigrams import FILE as BIGRAMS
from nestvec.encoders.hashed.bigrams import Bigrams, channel
from nestvec.errors import InputError
from nestvec.files import write_json_atomic

FILE = "lexicon.json"
_MIN_LENGTH = 2  # one-letter words have too many neighbours one edit away to guess from
_LETTERS = re.compile(r"[a-z]+")
_PARTS = re.compile(r"([-'])")  # the separators are kept as parts of their own
_KEEP = math.log(0.999)  # prior that a known word was typed as meant
_SWAP = math.log(0.001)
_DECISIONS = 1 << 18  # cached (before, word, after) decisions, about 50 MB at most


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


def _plain(word: str) -> bool:
    return len(word) >= _MIN_LENGTH and _LETTERS.fullmatch(word) is not None


class Lexicon:
    def __init__(self, counts: dict[str, int], bigrams: Bigrams | None = None, *, digest: str | None = None) -> None:
        self.counts = counts
        self.index = {word: i for i, word in enumerate(counts)}  # len(counts) stands for any other token
        self.contextual = bigrams is not None  # else: choose by frequency and channel alone
        self.bigrams = bigrams or Bigrams.unigrams_only([*counts.values(), 0])
        self.digest = digest  # sha256 of the files it was loaded from: part of a model's identity
        self._by_deletion: dict[str, list[str]] = {}
        for word in counts:
            if _plain(word):
                for variant in _deletions(word):
                    self._by_deletion.setdefault(variant, []).append(word)
        self.candidates = lru_cache(maxsize=1 << 16)(self._candidates)
        self._decisions: dict[tuple[int, str, int], str | None] = {}

    @classmethod
    def from_texts(
        cls, texts: Sequence[str], *, split: Callable[[str], list[str]], size: int, min_count: int = 3
    ) -> Lexicon:
        """The `size` most frequent lowercase tokens seen `min_count` times or more, and their bigrams."""
        counts = Counter(token.lower() for text in texts for token in split(text))
        kept = dict([(w, c) for w, c in counts.most_common(size) if c >= min_count])
        index = {word: i for i, word in enumerate(kept)}
        other = len(kept)
        sentences = ([index.get(t.lower(), other) for t in split(text)] for text in texts)
        unigrams = [*kept.values(), counts.total() - sum(kept.values())]  # the last: every other token
        return cls(kept, Bigrams.count(sentences, unigrams))

    def _candidates(self, lower: str) -> tuple[tuple[str, ...], np.ndarray, np.ndarray]:
        """The known words one edit from `lower`, their ids, and log P(`lower` typed | each meant)."""
        found = set(self._by_deletion.get(lower, []))  # the typo dropped a letter
        for variant in _deletions(lower):
            if variant in self.counts and _plain(variant):  # the typo added a letter
                found.add(variant)
            found.update(self._by_deletion.get(variant, []))  # a letter replaced or two swapped
        found.discard(lower)
        near = tuple(sorted(w for w in found if _one_edit(lower, w)))
        ids = np.array([self.index[w] for w in near], dtype=np.int64)
        return near, ids, np.log([channel(w, lower) for w in near]) if near else np.zeros(0)

    def _context(self, lowers: Sequence[str], ids: np.ndarray, j: int) -> tuple[int, str, int]:
        """(id before, word, id after); -1 where there is no neighbour or no bigrams to use it."""
        before = int(ids[j - 1]) if j > 0 and self.contextual else -1
        after = int(ids[j + 1]) if j < len(ids) - 1 and self.contextual else -1
        return before, lowers[j], after

    def _decide(self, contexts: Sequence[tuple[int, str, int]]) -> list[str | None]:
        """For each (before, word, after), the word meant (None: as typed), all scored in one pass."""
        found = [self.candidates(lower) for _, lower, _ in contexts]
        mine = [self.index.get(lower, -1) for _, lower, _ in contexts]
        scored = [np.append(c[1], k) if k >= 0 else c[1] for c, k in zip(found, mine, strict=True)]
        sizes = [len(c) for c in scored]
        before = np.repeat([b for b, _, _ in contexts], sizes)
        after = np.repeat([a for _, _, a in contexts], sizes)
        fit = self.bigrams.log_fit(np.concatenate(scored), before, after)
        meant: list[str | None] = []
        offset = 0
        for (near, _, log_channel), known, size in zip(found, mine, sizes, strict=True):
            scores = fit[offset : offset + len(near)] + log_channel
            best = int(np.argmax(scores))
            keep = known >= 0 and scores[best] + _SWAP <= fit[offset + len(near)] + _KEEP
            meant.append(None if keep else near[best])
            offset += size
        return meant

    def _meant(self, lowers: Sequence[str], slots: Sequence[int], ids: np.ndarray) -> list[str | None]:
        """`_decide` through a cache: a word between the same two tokens is decided once."""
        keys = [self._context(lowers, ids, j) for j in slots]
        todo = list(dict.fromkeys(key for key in keys if key not in self._decisions))
        if todo:
            if len(self._decisions) > _DECISIONS:
                self._decisions.clear()
            self._decisions.update(zip(todo, self._decide(todo), strict=True))
        return [self._decisions[key] for key in keys]

    def mend(self, tokens: Sequence[str]) -> list[str]:
        """`tokens` with each plain word replaced by the word it most likely misspells (itself if none)."""
        out = list(tokens)
        lowers = [t.lower() for t in tokens]
        ids = np.array([self.index.get(w, len(self.counts)) for w in lowers], dtype=np.int64)
        slots = [j for j, lower in enumerate(lowers) if _plain(lower) and len(self.candidates(lower)[0])]
        for j, lower in enumerate(lowers):
            if ("-" in lower or "'" in lower) and lower not in self.index:  # "closk-up", "chied's": by part
                out[j] = "".join(self.correct(p) if _plain(p.lower()) else p for p in _PARTS.split(tokens[j]))
        if not slots:
            return out
        meant = self._meant(lowers, slots, ids)
        for n, j in enumerate(slots):
            if n and slots[n - 1] == j - 1 and meant[n - 1] is not None:  # scored beside what was typed
                meant[n] = self._meant(lowers, [j], ids)[0]
            if meant[n] is not None:
                word = str(meant[n])
                out[j] = word.capitalize() if tokens[j][:1].isupper() else word
                ids[j] = self.index[word]
        return out

    def correct(self, word: str) -> str:
        """`word` mended without context."""
        return self.mend([word])[0]

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        if self.contextual:
            self.bigrams.save(folder)
        write_json_atomic(folder / FILE, {"words": list(self.counts), "counts": list(self.counts.values())})

    @classmethod
    def load(cls, folder: Path) -> Lexicon | None:
        path = folder / FILE
        if not path.exists():
            return None
        raw = path.read_bytes()
        data = json.loads(raw)
        words, counts = data.get("words"), data.get("counts")
        if not isinstance(words, list) or not isinstance(counts, list) or len(words) != len(counts):
            raise InputError(f"{path} must hold equal-length 'words' and 'counts' lists; rewrite it with Lexicon.save.")
        counted = {str(w): int(c) for w, c in zip(words, counts, strict=True)}
        digest = hashlib.sha256(raw)
        if not (folder / BIGRAMS).exists():
            return cls(counted, digest=digest.hexdigest())
        raw_bigrams = (folder / BIGRAMS).read_bytes()
        bigrams = Bigrams.from_bytes(raw_bigrams)
        if bigrams.width != len(counted) + 1:
            raise InputError(
                f"{folder / BIGRAMS} counts {bigrams.width - 1} tokens but {path} lists {len(counted)}; "
                "they were not saved together: retrain the model or delete both files."
            )
        digest.update(raw_bigrams)
        return cls(counted, bigrams, digest=digest.hexdigest())
