"""Start a Matryoshka fine-tune from the principal axes of the training texts' vectors.

A model that was never trained to nest spreads its variance over every coordinate, so its
first 64 are an arbitrary 64. Rotating the pooled vector onto the principal axes of the
(uncentered) vectors of the run's own training texts puts the directions that tell those texts
apart first; an orthogonal rotation leaves every full-width cosine as it was, so the model starts
exactly where the base is and only its prefixes change. This is PCA used as Matryoshka-Adaptor's
initial linear adaptor (Yoon et al., 2024), kept in the model as a sentence-transformers Dense
module (no bias, identity activation) that the fine-tune then trains with the rest.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import numpy as np

from nestvec.errors import InputError
from nestvec.train.data import TrainingData

MAX_TEXTS = 20_000  # enough for a 384x384 second-moment matrix; a cap keeps the encode short


def rotation_texts(sets: Sequence[TrainingData], *, seed: int, limit: int = MAX_TEXTS) -> list[str]:
    """Every distinct text column entry of the run's data sets, a seeded sample when there are more."""
    texts = list(
        dict.fromkeys(
            t for data in sets for name, column in data.columns.items() if name != "score" for t in column
            if isinstance(t, str) and t
        )
    )  # fmt: skip
    if len(texts) > limit:
        texts = random.Random(seed).sample(texts, limit)
    return texts


def principal_rotation(vectors: np.ndarray) -> np.ndarray:
    """The orthogonal matrix whose rows are the principal axes of `vectors` (uncentered, so that
    cosines are kept), strongest first; each axis signed so its largest coordinate is positive,
    which makes the result a function of the data alone."""
    if vectors.ndim != 2 or vectors.shape[0] < vectors.shape[1]:
        raise InputError(
            f"A rotation over {vectors.shape[-1]} dims needs at least as many training texts; "
            f"found {vectors.shape[0]}. Add unlabeled text (--kind text) or train without --rotate."
        )
    _, _, vt = np.linalg.svd(vectors.astype(np.float64), full_matrices=False)
    signs = np.sign(vt[np.arange(vt.shape[0]), np.abs(vt).argmax(axis=1)])
    return (vt * signs[:, None]).astype(np.float32)


def add_rotation(model: Any, texts: list[str]) -> Any:
    """`model` (a SentenceTransformer) with a Dense rotation inserted before its Normalize."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Dense, Normalize

    vectors = model.encode(texts, batch_size=64, convert_to_numpy=True, normalize_embeddings=False)
    weight = torch.from_numpy(principal_rotation(np.asarray(vectors)))
    dim = weight.shape[0]
    dense = Dense(dim, dim, bias=False, activation_function=torch.nn.Identity(), init_weight=weight)
    modules = list(model)
    at = next((i for i, m in enumerate(modules) if isinstance(m, Normalize)), len(modules))
    rotated = SentenceTransformer(modules=[*modules[:at], dense, *modules[at:]], device=str(model.device))
    rotated.prompts, rotated.default_prompt_name = dict(model.prompts), model.default_prompt_name
    return rotated
