"""Hard negatives for in-batch-negative training, mined with nestvec's own index.

For each anchor, the corpus texts (every positive, plus any extra texts) nearest to it under the
model are candidates, searched exactly. The nearest `skip_top` are skipped: they are likely
unlabeled positives, false negatives that would teach the model to push apart what belongs
together (Conan-embedding, 2024). A candidate must also score below the positive's score times
(1 - margin), NV-Retriever's positive-aware threshold (Moreira et al., 2024). Of those left,
`count` are drawn at random (seeded).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from nestvec.encoders import Encoder
from nestvec.errors import InputError
from nestvec.index.spec import IndexSpec
from nestvec.index.vector_index import VectorIndex
from nestvec.train.data import TrainingData


def mine_negatives(
    data: TrainingData,
    encoder: Encoder,
    *,
    count: int = 1,
    skip_top: int = 3,
    candidates: int = 30,
    margin: float = 0.05,
    extra: Sequence[str] = (),
    seed: int = 0,
) -> TrainingData:
    """`data` (pairs) with `count` mined negatives per row, as negative_1…negative_count."""
    if data.kind != "pairs":
        raise InputError(f"Negatives are mined for pairs data; {data.path} is {data.kind}.")
    anchors, positives = data.columns["anchor"], data.columns["positive"]
    corpus = list(dict.fromkeys([*positives, *extra]))
    vectors = encoder.encode(corpus, batch_size=64)
    index = VectorIndex(IndexSpec(), vectors.shape[1])  # exact: mined negatives should not depend on recall
    index.add(np.arange(len(corpus)), vectors)
    queries = encoder.encode(list(anchors), batch_size=64)
    found = index.search(queries, min(len(corpus), skip_top + candidates + 1))
    position = {text: i for i, text in enumerate(corpus)}
    rng = random.Random(seed)
    mined: list[list[str]] = []
    for row, result in enumerate(found):
        own = position[positives[row]]
        ceiling = float(queries[row] @ vectors[own]) * (1.0 - margin)
        ranked = [
            (int(label), float(score))
            for label, score in zip(result.labels, result.scores, strict=True)
            if int(label) != own and corpus[int(label)] != anchors[row]
        ]
        beyond = ranked[skip_top:]
        pool = [i for i, s in beyond if s < ceiling] or [i for i, _ in beyond] or [i for i, _ in ranked]
        if not pool:
            raise InputError(f"{data.path}: too few distinct texts to mine negatives from; add texts with extra=.")
        picks = rng.sample(pool, count) if len(pool) >= count else rng.choices(pool, k=count)
        mined.append([corpus[i] for i in picks])
    columns = {k: v for k, v in data.columns.items() if not k.startswith("negative")}
    columns |= {f"negative_{n + 1}": [row[n] for row in mined] for n in range(count)}
    settings = {"model": encoder.name, "count": count, "skip_top": skip_top, "margin": margin, "seed": seed}
    return replace(data, columns=columns, mined=settings | {"extra_texts": len(extra)})
