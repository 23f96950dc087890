"""Batches of neighbours for the in-batch losses (mnrl, cached-mnrl, simcse): `batches="clustered"`.

In-batch negatives teach only through the negatives that lie near: in random batches of a large,
varied corpus almost none do. SimCSE's loss over dictionary glosses is 2.9e-5 in random batches
of 32 and 0.024 in batches drawn from one k-means cluster of the model's vectors
(bench/simcse_batches.py). This is TAS-Balanced's topic-aware sampling (Hofstätter et al., 2021,
"Efficiently Teaching an Effective Dense Retriever with Balanced Topic Aware Sampling"): cluster
the anchors with the starting model, then compose each batch from one cluster.

The order is fixed before training, from the starting model and the seed, so a resumed run sees
the batches an unbroken one does; the trainer then reads each set in that order (`InOrderBatchSampler`).
Imported only by a training run: sentence-transformers is the train extra.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np
from sentence_transformers.base.sampler import DefaultBatchSampler
from torch.utils.data import SequentialSampler

from nestvec.train.data import TrainingData

BATCHES_PER_CLUSTER = 2  # clusters of about two batches: neighbours, yet not the same few texts every step


def clustered_dataset(data: TrainingData, model: Any, *, batch_size: int, seed: int, rows: int | None) -> Any:
    """`data` as a datasets.Dataset in clustered batch order: at most `rows` rows (a seeded random
    subset, when a run of max_steps reads fewer than the set holds), anchors clustered by `model`."""
    dataset = data.dataset()
    if rows is not None and rows < len(dataset):
        dataset = dataset.shuffle(seed=seed).select(range(rows))
    anchors = dataset[dataset.column_names[0]]
    vectors = model.encode(
        anchors, batch_size=64, normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
    )
    columns = [c for c in dataset.column_names if c != "label"]  # the texts; in-batch sets hold no labels today
    texts = [frozenset(str(v) for v in row) for row in zip(*(dataset[c] for c in columns), strict=True)]
    return dataset.select(clustered_order(vectors, texts, batch_size=batch_size, seed=seed))


def clustered_order(vectors: np.ndarray, texts: list[frozenset[str]], *, batch_size: int, seed: int) -> list[int]:
    """Row indices in batch order: each batch from one k-means cluster of `vectors` where it can
    be, no text twice in a batch (an in-batch negative equal to the positive teaches the wrong
    thing), full batches in random order and a short one, if any, last."""
    import faiss

    rng = np.random.default_rng(seed)
    k = max(1, len(vectors) // (BATCHES_PER_CLUSTER * batch_size))
    labels = np.zeros(len(vectors), dtype=np.int64)
    if k > 1:
        points = np.ascontiguousarray(vectors, dtype=np.float32)
        # small clusters are the point here, so faiss's warning about few points a centroid is moot
        kmeans = faiss.Kmeans(points.shape[1], k, niter=20, seed=seed, spherical=True, min_points_per_centroid=1)
        kmeans.train(points)
        labels = kmeans.index.search(points, 1)[1][:, 0]
    stream = [int(i) for c in rng.permutation(k) for i in rng.permutation(np.flatnonzero(labels == c))]
    batches = _without_repeats(stream, texts, batch_size)
    full = [b for b in batches if len(b) == batch_size]
    order = [full[i] for i in rng.permutation(len(full))] + [b for b in batches if len(b) < batch_size]
    return [i for batch in order for i in batch]


def _without_repeats(stream: list[int], texts: list[frozenset[str]], batch_size: int) -> list[list[int]]:
    """`stream` cut into batches in order; a row whose text the batch already holds waits for the next."""
    batches: list[list[int]] = []
    waiting: deque[int] = deque()
    batch: list[int] = []
    seen: set[str] = set()
    for row in stream:
        for _ in range(len(waiting)):  # the rows put off before get the first free places
            held = waiting.popleft()
            if len(batch) < batch_size and not texts[held] & seen:
                batch.append(held)
                seen |= texts[held]
            else:
                waiting.append(held)
        if len(batch) < batch_size and not texts[row] & seen:
            batch.append(row)
            seen |= texts[row]
        else:
            waiting.append(row)
        if len(batch) == batch_size:
            batches.append(batch)
            batch, seen = [], set()
    rest = batch + list(waiting)  # the tail: repeats here cannot be avoided any longer
    batches.extend(rest[i : i + batch_size] for i in range(0, len(rest), batch_size))
    return batches


class InOrderBatchSampler(DefaultBatchSampler):  # type: ignore[misc]
    """sentence-transformers' batch sampler reading a set in its stored order (a class at module
    level: the trainer pickles its arguments, this among them, into every checkpoint)."""

    def __init__(self, dataset: Any, batch_size: int, drop_last: bool, **kwargs: Any) -> None:
        super().__init__(SequentialSampler(dataset), batch_size=batch_size, drop_last=drop_last, **kwargs)
