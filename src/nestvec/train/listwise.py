"""Listwise distillation: each query's passages ordered as a teacher orders them.

A teacher's scores over a query's ranked passages (its own top ranks and a few further down) say
which passage should come first, and by how much; the student learns them as a distribution:
the KL divergence between softmax(teacher / τ) and softmax(student cosine / τ) over the row
(sentence-transformers' DistillKLDivLoss; Lin et al., 2020, "Distilling Dense Representations for
Ranking using Tightly-Coupled Teachers"). Nested over a Matryoshka ladder with the full-width
model as the teacher, it is Matryoshka-Adaptor's top-k ranking loss (Yoon et al., 2024): every
prefix learns the order the full width gives each query's passages, which is what a short prefix
loses on retrieval, where pair-wise labels compare passages of different queries.
"""

from __future__ import annotations

from typing import Any

from sentence_transformers.sentence_transformer.losses import DistillKLDivLoss
from sentence_transformers.util import pairwise_cos_sim
from torch import Tensor

TEMPERATURE = 0.05  # the in-batch-negatives scale (20): cosines of one query's passages differ by tenths


class ListwiseLoss(DistillKLDivLoss):  # type: ignore[misc]
    """DistillKLDivLoss on cosines at one temperature for teacher and student, without the τ²
    factor that loss applies: below τ = 1 it would shrink the gradient 400-fold beside the other
    losses of a multi-dataset run."""

    def __init__(self, model: Any, *, temperature: float = TEMPERATURE) -> None:
        super().__init__(model, similarity_fct=pairwise_cos_sim, temperature=temperature)

    def compute_loss_from_embeddings(self, embeddings: list[Tensor], labels: Tensor) -> Tensor:
        return super().compute_loss_from_embeddings(embeddings, labels) / self.student_temperature**2
