"""A user vocabulary for static distillation: whole words from a corpus become tokens of their own.

A word the teacher's tokenizer splits ("embeddings" -> em ##bed ##ding ##s) gets one row, the
teacher's vector of the whole word, instead of the mean of its pieces' rows.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import numpy as np
from tokenizers import AddedToken, Tokenizer

from nestvec.encoders.base import progress_bar
from nestvec.encoders.transformer.tokenize import Batch
from nestvec.extras import require

if TYPE_CHECKING:
    from nestvec.encoders.transformer.torch_backend import TransformerEncoder

_WORD = re.compile(r"[^\W\d_]{3,}")  # letters only, three or more: no numbers, no fragments


def corpus_words(texts: Iterable[str], tokenizer: Tokenizer, *, size: int, min_count: int = 2) -> list[str]:
    """The `size` most frequent whole words of `texts` that `tokenizer` splits into several tokens.

    Words are taken as the tokenizer sees them: after its normalizer (lowercasing, accents) and
    its pre-tokenizer (whitespace and punctuation).
    """
    counts: Counter[str] = Counter()
    for text in texts:
        normalized = tokenizer.normalizer.normalize_str(text) if tokenizer.normalizer else text
        pieces = tokenizer.pre_tokenizer.pre_tokenize_str(normalized) if tokenizer.pre_tokenizer else []
        counts.update(word for word, _ in pieces if _WORD.fullmatch(word))
    vocab = tokenizer.get_vocab()
    frequent = (w for w, c in counts.most_common() if c >= min_count and w not in vocab)
    return [w for w, _ in zip(frequent, range(size), strict=False)]


def word_vectors(model: TransformerEncoder, tokenizer: Tokenizer, words: Sequence[str], batch_size: int) -> np.ndarray:
    """The teacher's pooled vector of each word's pieces between reversed special tokens, as for tokens."""
    torch = require("torch", "transformer", "Training")

    wrapped = tokenizer.encode("", add_special_tokens=True).ids
    pieces = [e.ids for e in tokenizer.encode_batch(list(words), add_special_tokens=False)]
    out = np.empty((len(words), model.dim), dtype=np.float32)
    with torch.inference_mode(), progress_bar(len(words), None, unit="word", desc="teacher's word vectors") as bar:
        for lo in range(0, len(words), batch_size):
            bar.update(min(batch_size, len(words) - lo))
            rows = [[wrapped[1], *ids, wrapped[0]] for ids in pieces[lo : lo + batch_size]]
            width = max(len(r) for r in rows)
            input_ids = np.zeros((len(rows), width), dtype=np.int64)
            mask = np.zeros_like(input_ids)
            for i, row in enumerate(rows):
                input_ids[i, : len(row)], mask[i, : len(row)] = row, 1
            batch = Batch(np.arange(len(rows)), input_ids, mask, np.zeros_like(input_ids))
            out[lo : lo + len(rows)] = model.pooled(batch).cpu().numpy()
    return out


def add_words(tokenizer: Tokenizer, words: Sequence[str]) -> None:
    """Make each word one token, matched only as a whole word, after normalization; ids follow the vocabulary."""
    size = tokenizer.get_vocab_size()
    tokenizer.add_tokens([AddedToken(w, single_word=True, normalized=True) for w in words])
    if tokenizer.get_vocab_size() != size + len(words):
        raise AssertionError("some words were already tokens")  # corpus_words filters them out first
