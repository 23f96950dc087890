"""Prefix similarity distillation: every prefix of the student keeps the teacher's similarities.

Matryoshka training on labelled pairs teaches short prefixes what those labels say and nothing
else: CoSENT on STS pairs makes 64 dims good at STS and lets them forget what made the full
model good at retrieval. Matryoshka-Adaptor (Yoon et al., 2024, "Matryoshka-Adaptor:
Unsupervised and Supervised Tuning for Smaller Embedding Dimensions") keeps the rest from
unlabeled text alone: the cosine similarities between the texts of a batch, computed from each
prefix of the student, are pulled towards the same similarities from the teacher's full vectors.
Beside a supervised loss (multi-dataset training), the supervised set moves what it must and the
unlabeled set holds every prefix to the geometry the teacher had everywhere else.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F


class PrefixSimilarityLoss(nn.Module):
    """MSE between the student's in-batch cosine matrix at each prefix and the teacher's.

    `labels` are the teacher's vectors (one row per text, any width); the diagonal, always 1,
    is left out. Each prefix of `dims` (the whole vector when empty) weighs the same."""

    def __init__(self, model: Any, dims: tuple[int, ...] = ()) -> None:
        super().__init__()
        self.model = model
        self.dims = tuple(dims) or (model.get_embedding_dimension(),)

    def forward(self, sentence_features: Iterable[dict[str, Tensor]], labels: Tensor) -> Tensor:
        features = list(sentence_features)
        embeddings = self.model(features[0])["sentence_embedding"]
        target = _cosines(labels.to(embeddings.dtype))
        off = ~torch.eye(len(embeddings), dtype=torch.bool, device=embeddings.device)
        total = embeddings.new_zeros(())
        for dim in self.dims:
            total = total + F.mse_loss(_cosines(embeddings[:, :dim])[off], target[off])
        return total / len(self.dims)

    def get_config_dict(self) -> dict[str, Any]:
        return {"dims": list(self.dims)}


def _cosines(vectors: Tensor) -> Tensor:
    unit = F.normalize(vectors, dim=-1)
    return unit @ unit.T
