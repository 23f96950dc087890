"""A word list that mends one-letter typos before hashing (SymSpell's deletion lookup).

Hashed features of a misspelt word share only part of the word's features, and its whole-word
feature lands on a row trained for some other word. When a hash model carries a lexicon (the
frequent words of its training texts), a word missing from it is replaced by the most frequent
lexicon word one edit away: a deletion, insertion, substitution or transposition leaves the two
words with a common one-letter deletion (or one is the other's deletion), so a single dictionary
from deletions to words finds every candidate without generating all edits. Candidates are kept
only at one edit (a shared deletion can hide two), and the most frequent one wins.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from nestvec.errors import InputError
from nestvec.files import write_json_atomic

FILE = "lexicon.json"
_MIN_LENGTH = 2  # one-letter words have too many neighbours one edit away to guess from
_LETTERS = re.compile(r"[a-z]+")


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


class Lexicon:
    def __init__(self, counts: dict[str, int], *, digest: str | None = None) -> None:
        self.counts = counts
        self.digest = digest  # sha256 of the file it was loaded from: part of a model's identity
        self._by_deletion: dict[str, list[str]] = {}
        for word in counts:
            for variant in _deletions(word):
                self._by_deletion.setdefault(variant, []).append(word)

    @classmethod
    def from_words(cls, words: Iterable[str], *, size: int, min_count: int = 3) -> Lexicon:
        """The `size` most frequent lowercase words of 2+ letters seen `min_count` times or more."""
        counts = Counter(w for w in (word.lower() for word in words) if _LETTERS.fullmatch(w))
        common = [(w, c) for w, c in counts.most_common() if c >= min_count and len(w) >= _MIN_LENGTH]
        return cls(dict(common[:size]))

    def correct(self, word: str) -> str:
        """`word` itself if known, short or not plain letters; else its likeliest one-edit neighbour."""
        lower = word.lower()
        if len(lower) < _MIN_LENGTH or lower in self.counts or not _LETTERS.fullmatch(lower):
            return word
        found = set(self._by_deletion.get(lower, []))  # the typo dropped a letter
        for variant in _deletions(lower):
            if variant in self.counts:  # the typo added a letter
                found.add(variant)
            found.update(self._by_deletion.get(variant, []))  # a letter replaced or two swapped
        near = [w for w in found if _one_edit(lower, w)]
        if not near:
            return word
        best = max(near, key=lambda w: (self.counts[w], w))
        return best.capitalize() if word[:1].isupper() else best

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
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
        return cls(counted, digest=hashlib.sha256(raw).hexdigest())
