"""Dictionary text from Debian's wordnet-base and dict-gcide, and a held-out gloss→headword set.

WordNet synsets are split by their (offset, part of speech), hashed: 10% are held out as the
test set (a BEIR folder: each query a synset's gloss, its relevant documents the synset's
lemmas; the corpus every lemma of the held-out synsets plus `distractors` other lemmas), 5% are
dev, the rest train. Unlabeled training text is the train synsets' glosses plus GCIDE definitions
of headwords that are no held-out lemma, so no held-out gloss or headword's definition is ever
trained on.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import random
import re
from dataclasses import dataclass
from pathlib import Path

WORDNET = Path("/usr/share/wordnet")
GCIDE = Path("/usr/share/dictd")
_B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"


@dataclass(frozen=True)
class Synset:
    key: str
    lemmas: tuple[str, ...]
    gloss: str

    @property
    def split(self) -> str:
        bucket = int(hashlib.sha1(self.key.encode()).hexdigest(), 16) % 20
        return "test" if bucket < 2 else "dev" if bucket < 3 else "train"


def synsets(root: Path = WORDNET) -> list[Synset]:
    found = []
    for pos in ("noun", "verb", "adj", "adv"):
        for line in (root / f"data.{pos}").read_text(encoding="latin-1").splitlines():
            if line.startswith("  ") or "|" not in line:
                continue  # the licence header
            head, gloss = line.split("|", 1)
            fields = head.split()
            count = int(fields[3], 16)
            lemmas = tuple(dict.fromkeys(_lemma(fields[4 + 2 * i]) for i in range(count)))
            definition = gloss.split('; "')[0].strip()
            if definition:
                found.append(Synset(f"{fields[2]}{fields[0]}", lemmas, definition))
    return found


def _lemma(word: str) -> str:
    return re.sub(r"\(.*\)$", "", word).replace("_", " ").lower()


def gcide_definitions(root: Path = GCIDE) -> list[tuple[str, str]]:
    """(headword, definition) for every GCIDE entry, the definition cut to its first sense."""
    with gzip.open(root / "gcide.dict.dz") as dictionary:  # dictzip is gzip with an index of chunks
        raw = dictionary.read()
    found = []
    for line in (root / "gcide.index").read_text(encoding="utf-8").splitlines():
        word, offset, length = line.split("\t")
        if word.startswith("00-"):
            continue
        entry = raw[_num(offset) : _num(offset) + _num(length)].decode("utf-8", errors="replace")
        entry = re.sub(r"\[[^\]]*\]", " ", entry, flags=re.DOTALL)  # etymologies and sources, over lines
        body = re.sub(r"\{|\}|--[A-Z][\w. ]*", " ", "\n".join(entry.splitlines()[1:]))
        body = re.sub(r"^\s*\d+\.\s*", "", " ".join(body.split()))
        sense = re.split(r"\s\d+\.\s", body)[0].strip()
        if len(sense) > 10:
            found.append((word.lower(), sense[:300]))
    return found


def _num(digits: str) -> int:
    value = 0
    for char in digits:
        value = value * 64 + _B64.index(char)
    return value


def write_sets(
    folder: Path, *, distractors: int = 20_000, queries: int = 2_000, seed: int = 0, headwords: bool = False
) -> dict[str, Path]:
    """train.txt (unlabeled text), and BEIR folders gloss-dev/ and gloss-test/. `headwords`: the
    train synsets' lemmas and the GCIDE headwords outside the held-out set go into train.txt too,
    each on its own line (unpaired: nothing says which definition is whose)."""
    folder.mkdir(parents=True, exist_ok=True)
    every = synsets()
    held = {lemma for s in every if s.split != "train" for lemma in s.lemmas}
    texts = [s.gloss for s in every if s.split == "train"]
    definitions = [(word, d) for word, d in gcide_definitions() if word not in held]
    texts += [d for _, d in definitions]
    rng = random.Random(seed)
    rng.shuffle(texts)
    if headwords:  # shuffled in on their own, so the held-out sets below are drawn as without them
        words = {lemma for s in every if s.split == "train" for lemma in s.lemmas} - held
        texts += sorted(words | {word for word, _ in definitions})
        random.Random(seed + 1).shuffle(texts)
    (folder / "train.txt").write_text("".join(t.replace("\n", " ") + "\n" for t in texts), encoding="utf-8")
    lemmas = sorted({lemma for s in every for lemma in s.lemmas})
    paths = {"train": folder / "train.txt"}
    for split in ("dev", "test"):
        chosen = [s for s in every if s.split == split]
        chosen = rng.sample(chosen, min(queries, len(chosen)))
        corpus = {lemma for s in chosen for lemma in s.lemmas}
        corpus |= set(rng.sample(lemmas, min(distractors, len(lemmas))))
        ids = {lemma: f"w{i}" for i, lemma in enumerate(sorted(corpus))}
        out = folder / f"gloss-{split}"
        (out / "qrels").mkdir(parents=True, exist_ok=True)
        (out / "corpus.jsonl").write_text("".join(json.dumps({"_id": i, "text": w}) + "\n" for w, i in ids.items()))
        (out / "queries.jsonl").write_text("".join(json.dumps({"_id": s.key, "text": s.gloss}) + "\n" for s in chosen))
        rows = [f"{s.key}\t{ids[lemma]}\t1" for s in chosen for lemma in s.lemmas]
        (out / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" + "\n".join(rows) + "\n")
        paths[split] = out
    return paths
