"""The batched, bounded typo mending decides exactly what the plain one-word-at-a-time rule does.

The reference below is the lexicon's rule written the slow way (nestvec 0.2's code): every
neighbour of every plain word is scored with its bigrams, one text at a time, a word right
after a mended one decided again beside the mended word. The lexicon under test decides a
batch at once, reads known words' neighbours from `neighbours.safetensors`, and settles most
known words from an upper bound without their bigrams; the mended tokens must be identical.
"""

from __future__ import annotations

import csv
import math
import random
import re
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from nestvec.encoders.hashed.bigrams import channel
from nestvec.encoders.hashed.lexicon import Lexicon
from nestvec.encoders.hashed.model import words
from nestvec.encoders.hashed.neighbours import FILE as NEIGHBOURS
from nestvec.encoders.hashed.neighbours import plain
from nestvec.errors import InputError
from tests.conftest import papers

ROOT = Path(__file__).resolve().parent
STS = [ROOT / "data" / "sts" / name for name in ("stsb-en-train-400.csv", "stsb-en-dev-200.csv")]
STS_TEST = ROOT / "data" / "sts" / "stsb-en-test.csv"


def _one_edit(a: str, b: str) -> bool:
    if abs(len(a) - len(b)) > 1:
        return False
    if len(a) != len(b):
        short, long = (a, b) if len(a) < len(b) else (b, a)
        return any(long[:i] + long[i + 1 :] == short for i in range(len(long)))
    diff = [i for i in range(len(a)) if a[i] != b[i]]
    return len(diff) == 1 or (
        len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]]
    )


class Reference:
    """The rule, one text and one word at a time."""

    def __init__(self, lexicon: Lexicon) -> None:
        self.lexicon, self.known = lexicon, lexicon.counts
        self.index = {w: i for i, w in enumerate(self.known)}
        self.by_deletion: dict[str, list[str]] = {}
        for word in self.known:
            if plain(word):
                for i in range(len(word)):
                    self.by_deletion.setdefault(word[:i] + word[i + 1 :], []).append(word)

    def near(self, lower: str) -> list[str]:
        found = set(self.by_deletion.get(lower, []))
        for i in range(len(lower)):
            variant = lower[:i] + lower[i + 1 :]
            if variant in self.known and plain(variant):
                found.add(variant)
            found.update(self.by_deletion.get(variant, []))
        found.discard(lower)
        return sorted(w for w in found if _one_edit(lower, w))

    def fit(self, word_id: int, before: int, after: int) -> float:
        args = (np.array([word_id]), np.array([before]), np.array([after]))
        return float(self.lexicon.bigrams.log_fit(*args)[0])

    def decide(self, lowers: list[str], ids: list[int], j: int) -> str | None:
        contextual = self.lexicon.contextual
        before = ids[j - 1] if j > 0 and contextual else -1
        after = ids[j + 1] if j < len(ids) - 1 and contextual else -1
        candidates = self.near(lowers[j])
        scores = [self.fit(self.index[w], before, after) + math.log(channel(w, lowers[j])) for w in candidates]
        best = int(np.argmax(scores))
        mine = self.index.get(lowers[j], -1)
        if mine >= 0 and scores[best] + math.log(0.001) <= self.fit(mine, before, after) + math.log(0.999):
            return None
        return candidates[best]

    def correct(self, part: str) -> str:
        return self.mend([part])[0] if plain(part.lower()) else part

    def mend(self, tokens: Sequence[str]) -> list[str]:
        out, lowers = list(tokens), [t.lower() for t in tokens]
        ids = [self.index.get(w, len(self.known)) for w in lowers]
        slots = [j for j, w in enumerate(lowers) if plain(w) and self.near(w)]
        for j, lower in enumerate(lowers):
            if ("-" in lower or "'" in lower) and lower not in self.index:
                out[j] = "".join(self.correct(p) for p in re.split(r"([-'])", tokens[j]))
        typed = {j: self.decide(lowers, ids, j) for j in slots}
        previous: str | None = None
        for n, j in enumerate(slots):
            redo = n and slots[n - 1] == j - 1 and previous is not None
            meant = self.decide(lowers, ids, j) if redo else typed[j]
            if meant is not None:
                out[j] = meant.capitalize() if tokens[j][:1].isupper() else meant
                ids[j] = self.index[meant]
            previous = meant
        return out


def _typo(sentence: str, rng: random.Random) -> str:
    """One random substitution, deletion, insertion or swap in one word of 3+ letters."""
    spans = [m.span() for m in re.finditer(r"[A-Za-z]{3,}", sentence)]
    if not spans:
        return sentence
    start, end = rng.choice(spans)
    word, i = list(sentence[start:end]), rng.randrange(end - start)
    kind = rng.choice(("substitute", "delete", "insert", "swap"))
    if kind == "substitute":
        word[i] = rng.choice("abcdefghijklmnopqrstuvwxyz")
    elif kind == "delete":
        del word[i]
    elif kind == "insert":
        word.insert(i, rng.choice("abcdefghijklmnopqrstuvwxyz"))
    else:
        i = min(i, len(word) - 2)
        word[i], word[i + 1] = word[i + 1], word[i]
    return sentence[:start] + "".join(word) + sentence[end:]


@pytest.fixture(scope="module")
def lexicon_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    texts = [p["text"] for p in papers(678)] + [p["title"] for p in papers(678)]
    for path in STS:
        with path.open(encoding="utf-8") as fh:
            texts += [cell for row in csv.reader(fh) for cell in row[:2]]
    folder = tmp_path_factory.mktemp("lexicon")
    Lexicon.from_texts(texts, split=words, size=20_000, min_count=2).save(folder)
    return folder


def test_batched_bounded_mending_decides_as_the_plain_rule_on_the_sts_typo_copy(lexicon_folder: Path) -> None:
    with STS_TEST.open(encoding="utf-8") as fh:
        clean = [cell for row in csv.reader(fh) for cell in row[:2]][:1200]
    rng = random.Random(7)
    sentences = clean[:300] + [_typo(s, rng) for s in clean] + ["a well-knwon dog's bal", "Teh cat sat"]
    tokens = [words(s) for s in sentences]
    lexicon = Lexicon.load(lexicon_folder)
    assert lexicon is not None and (lexicon_folder / NEIGHBOURS).exists()
    reference = Reference(lexicon)
    expected = [reference.mend(t) for t in tokens]
    assert sum(e != t for e, t in zip(expected, tokens, strict=True)) > 300  # the rule mends many of them
    assert lexicon.mend_many(tokens) == expected
    assert [lexicon.mend(t) for t in tokens[:200]] == expected[:200]  # one at a time, decisions cached
    (lexicon_folder / NEIGHBOURS).rename(lexicon_folder / "aside")  # a folder saved before neighbours were
    try:
        looked_up = Lexicon.load(lexicon_folder)
        assert looked_up is not None and looked_up.mend_many(tokens) == expected
    finally:
        (lexicon_folder / "aside").rename(lexicon_folder / NEIGHBOURS)


def test_stored_neighbours_are_what_a_lookup_finds(lexicon_folder: Path) -> None:
    lexicon = Lexicon.load(lexicon_folder)
    assert lexicon is not None
    for word in [w for w in lexicon.words if plain(w)][:3000]:  # mending asks for plain words only
        stored, looked_up = lexicon.neighbours.of(word), lexicon.neighbours.look_up(word)
        np.testing.assert_array_equal(stored[0], looked_up[0])
        np.testing.assert_array_equal(stored[1], looked_up[1])


def test_neighbours_of_other_words_are_refused(lexicon_folder: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    Lexicon.from_texts(["one two three"] * 3, split=words, size=10).save(other)
    copy = tmp_path / "copy"
    shutil.copytree(lexicon_folder, copy)
    shutil.copy(other / NEIGHBOURS, copy / NEIGHBOURS)
    with pytest.raises(InputError, match="does not list the neighbours of the lexicon's"):
        Lexicon.load(copy)
