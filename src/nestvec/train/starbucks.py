"""The Starbucks ladder as a loss wrapper: sentence-transformers has Matryoshka2dLoss but not this.

Starbucks (Zhuang, Wang, Koopman and Zuccon, 2024, "Starbucks: Improved Training for 2D
Matryoshka Embeddings", arXiv:2410.13230) trains a fixed ladder of (layers, dims) pairs that
grow together — e.g. (1, 32), (2, 64), (3, 128) … (L, D) — instead of 2DMSE's random layer and
dim per step: every step computes the base loss at each pair (the sentence embedding pooled
from that layer, cut to those dims) and averages them, plus a KL term that pulls each pair's
in-batch score distribution towards the full model's (the last pair, detached as the teacher).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from sentence_transformers.base.losses.merged_forward import column_merging_disabled
from sentence_transformers.sentence_transformer.losses.adaptive_layer import TransformerDecorator
from torch import Tensor, nn
from torch.nn import functional as F

from nestvec.errors import InputError


def default_ladder(layers: int, dims: tuple[int, ...]) -> list[tuple[int, int]]:
    """Pairs that grow together: the dims ladder (smallest first) spread over the layers."""
    ordered = sorted(set(dims))
    if not ordered:
        raise InputError("The Starbucks ladder needs a dims ladder, e.g. --dims 384,256,128,64,32.")
    step = layers / len(ordered)
    return [(max(1, round(step * (i + 1))), d) for i, d in enumerate(ordered)]


class _Shrink:
    """Wraps the model's forward: cuts each sentence embedding to `dim` and keeps it for the KL term."""

    def __init__(self, forward: Any) -> None:
        self.forward, self.dim, self.outputs = forward, 0, []  # type: ignore[var-annotated]

    def __call__(self, features: dict[str, Tensor]) -> dict[str, Tensor]:
        output = self.forward(features)
        cut = F.normalize(output["sentence_embedding"][..., : self.dim], dim=-1)
        output = {**output, "sentence_embedding": cut}
        self.outputs.append(cut)
        return output


class StarbucksLoss(nn.Module):
    def __init__(
        self,
        model: Any,
        loss: nn.Module,
        ladder: list[tuple[int, int]],
        *,
        kl_weight: float = 1.0,
        temperature: float = 0.3,
    ) -> None:
        super().__init__()
        layers = model[0].auto_model.config.num_hidden_layers
        width = model.get_embedding_dimension()
        if not ladder or any(not 1 <= layer <= layers or not 1 <= dim <= width for layer, dim in ladder):
            raise InputError(f"Starbucks pairs must lie within 1–{layers} layers and 1–{width} dims, got {ladder}.")
        if max(ladder)[0] != layers:
            raise InputError(
                f"The Starbucks ladder must end at the full model's {layers} layers (its teacher), got {ladder}."
            )
        self.model, self.loss, self.ladder = model, loss, sorted(ladder)
        self.kl_weight, self.temperature = kl_weight, temperature

    def forward(self, sentence_features: Iterable[dict[str, Tensor]], labels: Tensor) -> Tensor:
        features = list(sentence_features)
        transformer = self.model[0]
        original_transformer, original_forward = transformer.forward, self.model.forward
        layers = TransformerDecorator(transformer, original_transformer)
        shrink = _Shrink(original_forward)
        transformer.forward, self.model.forward = layers, shrink
        try:
            with column_merging_disabled():  # layer outputs travel between loss calls in the feature dicts
                return self._ladder_loss(features, labels, layers, shrink)
        finally:
            transformer.forward, self.model.forward = original_transformer, original_forward

    def _ladder_loss(
        self, features: list[dict[str, Tensor]], labels: Tensor, layers: TransformerDecorator, shrink: _Shrink
    ) -> Tensor:
        shrink.dim = self.ladder[-1][1]
        total = self.loss(features, labels)  # the full pair first: it caches every layer's output
        teacher = self._scores(shrink).detach()
        for layer, dim in self.ladder[:-1]:
            layers.set_layer_idx(layer)
            shrink.dim = dim
            total = total + self.loss(features, labels)
            student = self._scores(shrink)
            kl = F.kl_div(F.log_softmax(student, dim=-1), F.softmax(teacher, dim=-1), reduction="batchmean")
            total = total + self.kl_weight * kl
        return total / len(self.ladder)

    def _scores(self, shrink: _Shrink) -> Tensor:
        """In-batch scores of the first column against the second, over the last loss call's outputs."""
        first, second = shrink.outputs[0], shrink.outputs[1] if len(shrink.outputs) > 1 else shrink.outputs[0]
        shrink.outputs = []
        return torch.matmul(first, second.T) / self.temperature

    def get_config_dict(self) -> dict[str, Any]:
        return {"loss": type(self.loss).__name__, "ladder": self.ladder, "kl_weight": self.kl_weight}
