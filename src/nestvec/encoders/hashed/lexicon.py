"""A token list that mends one-letter typos before hashing (noisy-channel choice by context).

Hashed features of a misspelt word share only part of the word's features, and its whole-word
feature lands on a row trained for some other word. When a hash model carries a lexicon (the
frequent tokens of unlabeled texts and their bigram counts, encoders/bigrams.py), each word is
checked against its one-edit neighbours (encoders/neighbours.py). An unknown word becomes the
neighbour that best fits its two neighbours and the typo; a known word is replaced only when a
neighbour is far likelier there ("a hose is running" → "horse"): real-word typos cost STS-B more
than all the others together. A batch of texts is decided in one vectorized pass; a word right
after a mended one is decided again, beside what it was mended to, in the rounds that follow.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from nestvec.encoders.hashed.bigrams import FILE as BIGRAMS
from nestvec.encoders.hashed.bigrams import Bigrams
from nestvec.encoders.hashed.neighbours import FILE as NEIGHBOURS
from nestvec.encoders.hashed.neighbours import Neighbours, plain
from nestvec.errors import InputError
from nestvec.files import write_json_atomic

FILE = "lexicon.json"
_PARTS = re.compile(r"([-'])")  # the separators are kept as parts of their own
_KEEP = math.log(0.999)  # prior that a known word was typed as meant
_SWAP = math.log(0.001)
_SLACK = 1e-9  # rounding room: the bound must never settle a word the exact scores would not
_DECISIONS = 1 << 18  # cached (before, word, after) decisions, about 50 MB at most
Context = tuple[int, str, int]  # (id before, word, id after); -1 where no neighbour or no bigrams


def _starts(sizes: np.ndarray) -> np.ndarray:
    """Where each segment of these sizes begins in their concatenation."""
    return np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)


class _Mending:
    """One text being mended: its slots (plain words with neighbours) decided in order."""

    def __init__(self, lexicon: Lexicon, tokens: Sequence[str]) -> None:
        self.lexicon, self.tokens, self.out = lexicon, tokens, list(tokens)
        self.lowers = [t.lower() for t in tokens]
        index, other = lexicon.index, len(lexicon.counts)
        self.ids = [index.get(w, other) for w in self.lowers]
        self.slots = [j for j, w in enumerate(self.lowers) if lexicon.has_neighbours(w)]
        self.typed = [self.context(j) for j in self.slots]  # every slot beside what was typed
        self.at = 0  # the next slot
        self.last: int | None = None  # what the slot before it was mended to

    def context(self, j: int) -> Context:
        contextual, ids = self.lexicon.contextual, self.ids
        before = ids[j - 1] if j > 0 and contextual else -1
        after = ids[j + 1] if j < len(ids) - 1 and contextual else -1
        return before, self.lowers[j], after

    def advance(self, decisions: dict[Context, int | None]) -> Context | None:
        """Apply decided slots in order; the first context not decided yet, or None when done."""
        while self.at < len(self.slots):
            j = self.slots[self.at]
            after_mended = self.at and self.slots[self.at - 1] == j - 1 and self.last is not None
            key = self.context(j) if after_mended else self.typed[self.at]
            if key not in decisions:
                return key
            self.last = meant = decisions[key]
            if meant is not None:
                word = self.lexicon.words[meant]
                self.out[j] = word.capitalize() if self.tokens[j][:1].isupper() else word
                self.ids[j] = meant
            self.at += 1
        return None


class Lexicon:
    def __init__(
        self,
        counts: dict[str, int],
        bigrams: Bigrams | None = None,
        *,
        digest: str | None = None,
        neighbours: dict[str, np.ndarray] | None = None,
    ) -> None:
        self.counts = counts
        self.words = list(counts)
        self.index = {word: i for i, word in enumerate(counts)}  # len(counts) stands for any other token
        self.contextual = bigrams is not None  # else: choose by frequency and channel alone
        self.bigrams = bigrams or Bigrams.unigrams_only([*counts.values(), 0])
        self.digest = digest  # sha256 of the files it was loaded from: part of a model's identity
        self.neighbours = Neighbours(self.words, self.index, neighbours)
        self._decisions: dict[Context, int | None] = {}
        self._slot: dict[str, bool] = {}  # whether a word is plain and has neighbours: asked for every token

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

    def has_neighbours(self, lower: str) -> bool:
        found = self._slot.get(lower)
        if found is None:
            if len(self._slot) > _DECISIONS:
                self._slot.clear()
            found = self._slot[lower] = plain(lower) and len(self.neighbours.of(lower)[0]) > 0
        return found

    def _decide(self, contexts: Sequence[Context]) -> list[int | None]:
        """For each context, the id of the word meant (None: as typed), all scored in one pass.

        A known word is kept unless a neighbour scores far above it there. Most known words are
        kept whatever their neighbours' bigrams say: an upper bound of every neighbour's score
        from unigram counts alone settles them, and only the rest are looked up in the bigrams.
        """
        found = [self.neighbours.of(lower) for _, lower, _ in contexts]
        sizes = np.fromiter((len(ids) for ids, _ in found), np.int64, len(found))
        before = np.fromiter((b for b, _, _ in contexts), np.int64, len(contexts))
        after = np.fromiter((a for _, _, a in contexts), np.int64, len(contexts))
        mine = np.fromiter((self.index.get(lower, -1) for _, lower, _ in contexts), np.int64, len(contexts))
        known = mine >= 0
        own = np.full(len(contexts), -np.inf)  # an unknown word always takes its best neighbour
        own[known] = self.bigrams.log_fit(mine[known], before[known], after[known]) + _KEEP - _SWAP
        near, log_channel = np.concatenate([i for i, _ in found]), np.concatenate([c for _, c in found])
        left, right = np.repeat(before, sizes), np.repeat(after, sizes)
        bound = np.maximum.reduceat(self.bigrams.log_fit_bound(near, left, right) + log_channel, _starts(sizes))
        unsettled = bound + _SLACK > own  # the contexts the bound does not settle
        open_ = np.flatnonzero(unsettled)
        meant: list[int | None] = [None] * len(contexts)
        if len(open_):
            rows = np.repeat(unsettled, sizes)
            sub_sizes, sub_near = sizes[open_], near[rows]
            scores = self.bigrams.log_fit(sub_near, left[rows], right[rows]) + log_channel[rows]
            sub_starts = _starts(sub_sizes)
            best = np.maximum.reduceat(scores, sub_starts)
            tops = np.flatnonzero(scores == np.repeat(best, sub_sizes))
            first = sub_near[tops[np.searchsorted(tops, sub_starts)]]  # the first of equals, as argmax would
            for c, score, word in zip(open_.tolist(), best.tolist(), first.tolist(), strict=True):
                meant[c] = None if score <= own[c] else int(word)
        return meant

    def _fill(self, contexts: Sequence[Context]) -> None:
        todo = list(dict.fromkeys(key for key in contexts if key not in self._decisions))
        if not todo:
            return
        if len(self._decisions) + len(todo) > _DECISIONS:
            self._decisions.clear()
        self._decisions.update(zip(todo, self._decide(todo), strict=True))

    def mend_many(self, texts: Sequence[Sequence[str]]) -> list[list[str]]:
        """Each token list with each plain word replaced by the word it most likely misspells."""
        jobs = [_Mending(self, tokens) for tokens in texts]
        self._fill([key for job in jobs for key in job.typed])
        pending = jobs
        while pending:  # rounds: a word after a mended one is decided beside the mended word
            missing = [(job, job.advance(self._decisions)) for job in pending]
            pending = [job for job, key in missing if key is not None]
            self._fill([key for _, key in missing if key is not None])
        split = [  # "closk-up", "chied's": mended part by part, without context
            (job, j, _PARTS.split(job.tokens[j]))
            for job in jobs
            for j, lower in enumerate(job.lowers)
            if ("-" in lower or "'" in lower) and lower not in self.index
        ]
        parts = [[p] for _, _, ps in split for p in ps if plain(p.lower())]
        mended = iter(self.mend_many(parts) if parts else [])
        for job, j, ps in split:
            job.out[j] = "".join(next(mended)[0] if plain(p.lower()) else p for p in ps)
        return [job.out for job in jobs]

    def mend(self, tokens: Sequence[str]) -> list[str]:
        """`tokens` with each plain word replaced by the word it most likely misspells (itself if none)."""
        return self.mend_many([tokens])[0]

    def correct(self, word: str) -> str:
        """`word` mended without context."""
        return self.mend([word])[0]

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        if self.contextual:
            self.bigrams.save(folder)
        self.neighbours.save(folder)
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
        # derived from the words alone, so not part of the digest; folders saved before it look them up
        stored = Neighbours.read(folder / NEIGHBOURS, len(counted)) if (folder / NEIGHBOURS).exists() else None
        if not (folder / BIGRAMS).exists():
            return cls(counted, digest=digest.hexdigest(), neighbours=stored)
        raw_bigrams = (folder / BIGRAMS).read_bytes()
        bigrams = Bigrams.from_bytes(raw_bigrams)
        if bigrams.width != len(counted) + 1:
            raise InputError(
                f"{folder / BIGRAMS} counts {bigrams.width - 1} tokens but {path} lists {len(counted)}; "
                "they were not saved together: retrain the model or delete both files."
            )
        digest.update(raw_bigrams)
        return cls(counted, bigrams, digest=digest.hexdigest(), neighbours=stored)
