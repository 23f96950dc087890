"""Evaluation during training with nestvec's readers and metrics, as sentence-transformers'
trainer calls it: the best checkpoint is the one with the highest primary metric."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from sentence_transformers.sentence_transformer.evaluation import SentenceEvaluator

from nestvec.eval import metrics
from nestvec.eval.readers import read_sts


class STSDevEvaluator(SentenceEvaluator):  # type: ignore[misc]
    """Spearman ×100 on an STS file, at full width and at each dims of the ladder."""

    def __init__(self, path: str | Path, *, dims: tuple[int, ...] = (), name: str = "sts-dev") -> None:
        super().__init__()
        self.pairs = read_sts(path)
        self.dims, self.name = dims, name
        self.primary_metric = "spearman"

    def __call__(
        self, model: Any, output_path: str | None = None, epoch: int = -1, steps: int = -1
    ) -> dict[str, float]:
        texts = self.pairs.texts1 + self.pairs.texts2
        vectors = np.asarray(model.encode(texts, batch_size=64, convert_to_numpy=True, show_progress_bar=False))
        found = {"spearman": self._spearman(vectors)}
        for dim in self.dims:
            found[f"spearman_{dim}"] = self._spearman(vectors[:, :dim])
        scores = self.prefix_name_to_metrics(found, self.name)
        self.store_metrics_in_model_card_data(model, scores, epoch, steps)
        return scores

    def _spearman(self, vectors: np.ndarray) -> float:
        unit = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        half = len(self.pairs.texts1)
        cosines = (unit[:half] * unit[half:]).sum(axis=1)
        return metrics.correlations(cosines, np.asarray(self.pairs.values))["spearman"]
