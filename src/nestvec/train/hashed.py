"""Train hash embeddings by distillation: regress a text's mean hashed vector onto the teacher's.

The teacher embeds unlabeled texts once; the table (torch EmbeddingBag, summed features, mean
over words) learns to point each text where the teacher does (loss 1 - cosine). Only the table
is saved; inference is nestvec.encoders.hashed in numpy.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nestvec.encoders.hashed import HashEncoder, HashSpec, save_hashed, words
from nestvec.encoders.hashed.lexicon import Lexicon
from nestvec.errors import InputError
from nestvec.extras import require
from nestvec.files import new_folder
from nestvec.train.fit import fit_bags

_LONG_WORD = re.compile(r"[A-Za-z]{3,}")


@dataclass(frozen=True)
class HashTrainReport:
    path: str
    texts: int
    epochs: int
    final_loss: float
    seconds: float


def train_hashed(
    texts: Sequence[str],
    targets: np.ndarray,
    output: str | Path,
    *,
    spec: HashSpec | None = None,
    epochs: int = 3,
    batch_size: int = 256,
    learning_rate: float = 0.05,
    seed: int = 0,
    typo_rate: float = 0.0,
    lexicon: int = 0,
    lexicon_texts: Sequence[str] | None = None,
    name: str = "hash embeddings",
) -> HashTrainReport:
    """Fit a table so each text's hashed mean matches `targets` (the teacher's vectors, one per text).

    `typo_rate` > 0 adds a copy of every text in which that share of its words carry one random
    character edit, with the clean text's target: the table then learns to lean on the features
    a typo leaves intact (trigrams, prefix, suffix, shape) rather than on the whole word alone.
    `lexicon` > 0 saves that many of the texts' most frequent tokens (seen 3+ times) and their
    bigram counts beside the table: the encoder then mends one-letter typos by context. They come
    from `lexicon_texts` when given: unlabeled text needs no teacher, so it can be far more — and
    should be (hundreds of thousands of sentences): a word seen fewer than 3 times is not in the
    lexicon, so it is "mended" into a known neighbour.
    """
    torch = require("torch", "transformer", "Training")

    spec = spec or HashSpec()
    start = time.perf_counter()
    target = new_folder(output)
    if lexicon < 0:
        raise InputError(f"lexicon is a word count (0 for none), got {lexicon}.")
    if len(texts) != len(targets) or not len(texts):
        raise InputError(f"Need one target vector per text, got {len(texts)} texts and {len(targets)} vectors.")
    if targets.shape[1] != spec.dim:
        spec = HashSpec(rows=spec.rows, dim=int(targets.shape[1]), seeds=spec.seeds, features=spec.features)
    rng = np.random.default_rng(seed)
    sources = list(texts)
    order = list(range(len(texts)))
    if typo_rate > 0:
        sources += [_misspell(t, typo_rate, rng) for t in texts]
        order += order
    bags = [np.fromiter((f for w in words(t) for f in spec.ids(w)), np.int64) for t in sources]
    torch.manual_seed(seed)
    table = torch.nn.EmbeddingBag(spec.rows, spec.dim, mode="sum")
    torch.nn.init.normal_(table.weight, std=0.01)
    optimizer = torch.optim.Adagrad(table.parameters(), lr=learning_rate)
    loss = fit_bags(
        table, optimizer, bags, targets, target_of=np.asarray(order), epochs=epochs, batch_size=batch_size, rng=rng
    )
    config = {"name": name, "trained_on": len(texts), "epochs": epochs, "typo_rate": typo_rate, "lexicon": lexicon}
    if lexicon:
        source = texts if lexicon_texts is None else lexicon_texts
        Lexicon.from_texts(source, split=words, size=lexicon).save(target)
    save_hashed(target, spec=spec, table=table.weight.detach().numpy(), config=config)
    HashEncoder(target)  # fail here, not later, if what was written cannot be read
    return HashTrainReport(str(target), len(texts), epochs, loss, time.perf_counter() - start)


def _misspell(text: str, rate: float, rng: np.random.Generator) -> str:
    """`text` with one random character edit in about `rate` of its words of 3+ letters."""
    letters = "abcdefghijklmnopqrstuvwxyz"

    def edit(match: re.Match[str]) -> str:
        word = match.group(0)
        if rng.random() >= rate:
            return word
        i = int(rng.integers(len(word)))
        kind = int(rng.integers(4))
        if kind == 0:
            return word[:i] + letters[int(rng.integers(26))] + word[i + 1 :]
        if kind == 1:
            return word[:i] + word[i + 1 :]
        if kind == 2:
            return word[:i] + letters[int(rng.integers(26))] + word[i:]
        i = min(i, len(word) - 2)
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]

    return _LONG_WORD.sub(edit, text)
