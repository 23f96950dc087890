"""Evaluation during training with nestvec's readers and metrics, as sentence-transformers'
trainer calls it: the best checkpoint is the one with the highest primary metric.

`dev_evaluator(path)` picks by what the path holds: an STS file (Spearman) or a BEIR folder
(corpus.jsonl, queries.jsonl, qrels/dev.tsv or test.tsv: nDCG@10 by exact cosine search).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from sentence_transformers.sentence_transformer.evaluation import SentenceEvaluator

from nestvec.eval import metrics
from nestvec.eval.readers import read_beir, read_sts
from nestvec.transforms.reduce import normalize


def dev_evaluator(path: str | Path, *, dims: tuple[int, ...] = ()) -> STSDevEvaluator | RetrievalDevEvaluator:
    """The evaluator for a dev set: retrieval for a BEIR folder, STS for a file."""
    if Path(path).is_dir():
        return RetrievalDevEvaluator(path, dims=dims)
    return STSDevEvaluator(path, dims=dims)


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
        unit = normalize(vectors)
        half = len(self.pairs.texts1)
        cosines = (unit[:half] * unit[half:]).sum(axis=1)
        return metrics.correlations(cosines, np.asarray(self.pairs.values))["spearman"]


class RetrievalDevEvaluator(SentenceEvaluator):  # type: ignore[misc]
    """nDCG@10 ×100 over a BEIR folder's dev judgments (its test ones when it has no dev split),
    exact cosine search over the whole corpus, at full width and at each dims of the ladder."""

    def __init__(self, folder: str | Path, *, dims: tuple[int, ...] = (), name: str = "retrieval-dev") -> None:
        super().__init__()
        split = "dev" if (Path(folder) / "qrels" / "dev.tsv").is_file() else "test"
        self.beir = read_beir(folder, split=split)
        self.dims, self.name = dims, name
        self.primary_metric = "ndcg10"

    def __call__(
        self, model: Any, output_path: str | None = None, epoch: int = -1, steps: int = -1
    ) -> dict[str, float]:
        ids = list(self.beir.corpus)
        docs = [" ".join(part for part in self.beir.corpus[i] if part) for i in ids]
        judged = [q for q in self.beir.queries if q in self.beir.qrels]
        encode = {"batch_size": 64, "convert_to_numpy": True, "show_progress_bar": False}
        corpus = np.asarray(model.encode(docs, **encode))
        queries = np.asarray(model.encode([self.beir.queries[q] for q in judged], **encode))
        found = {"ndcg10": self._ndcg(queries, corpus, ids, judged)}
        for dim in self.dims:
            found[f"ndcg10_{dim}"] = self._ndcg(queries[:, :dim], corpus[:, :dim], ids, judged)
        scores = self.prefix_name_to_metrics(found, self.name)
        self.store_metrics_in_model_card_data(model, scores, epoch, steps)
        return scores

    def _ndcg(self, queries: np.ndarray, corpus: np.ndarray, ids: list[str], judged: list[str]) -> float:
        scores = normalize(queries) @ normalize(corpus).T
        top = np.argsort(-scores, axis=1)[:, :100]
        run = {q: {ids[j]: float(scores[n, j]) for j in top[n]} for n, q in enumerate(judged)}
        return metrics.retrieval_scores(run, self.beir.qrels, ("ndcg@10",))["ndcg@10"]
