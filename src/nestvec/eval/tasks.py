"""Evaluation tasks: each encodes its data with a Setting and returns a typed TaskResult."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nestvec.encoders import Encoder
from nestvec.errors import InputError
from nestvec.eval import metrics
from nestvec.eval.readers import Column, read_labelled, read_pair_labels, read_sts
from nestvec.eval.setting import DEFAULT, Setting
from nestvec.extras import require
from nestvec.index import codec
from nestvec.transforms.reduce import normalize


@dataclass(frozen=True)
class TaskResult:
    task: str
    dataset: str
    setting: str
    main_metric: str
    metrics: dict[str, float]
    examples: int
    bytes_per_vector: int
    texts_per_s: float
    seconds: float
    run: dict[str, dict[str, float]] | None = field(default=None, repr=False, compare=False)

    @property
    def main(self) -> float:
        return self.metrics[self.main_metric]

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "run"}


class _Timer:
    """Times only the encoding, so throughput means texts per second of embedding."""

    def __init__(self, setting: Setting, encoder: Encoder, batch_size: int) -> None:
        codec.check_decodable(setting.recipe.index.codes)  # before the model runs
        self.setting, self.encoder, self.batch_size = setting, encoder, batch_size
        self.texts, self.seconds = 0, 0.0

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        start = time.perf_counter()
        vectors = self.encoder.encode(list(texts), batch_size=self.batch_size)
        self.seconds += time.perf_counter() - start
        self.texts += len(texts)
        return self.setting.apply(vectors)

    @property
    def rate(self) -> float:
        return self.texts / self.seconds if self.seconds else 0.0


def _cosine_pairs(embed: _Timer, texts1: list[str], texts2: list[str]) -> np.ndarray:
    unique = list(dict.fromkeys(texts1 + texts2))
    position = {text: i for i, text in enumerate(unique)}
    vectors = embed(unique)
    vectors = normalize(vectors)
    a = vectors[[position[t] for t in texts1]]
    b = vectors[[position[t] for t in texts2]]
    return np.asarray((a * b).sum(axis=1), dtype=np.float64)


def _result(
    task: str, path: Path, setting: Setting, timer: _Timer, main: str, values: dict[str, float], n: int, start: float
) -> TaskResult:
    return TaskResult(
        task,
        str(path),
        setting.label,
        main,
        values,
        n,
        setting.bytes_per_vector(timer.encoder),
        timer.rate,
        time.perf_counter() - start,
    )


def evaluate_sts(
    path: str | Path,
    setting: Setting = DEFAULT,
    *,
    columns: tuple[Column, Column, Column] | None = None,
    header: bool | None = None,
    score_range: tuple[float, float] = (0.0, 5.0),
    batch_size: int = 64,
) -> TaskResult:
    """Spearman and Pearson (×100) between cosine similarity and the gold scores."""
    start = time.perf_counter()
    pairs = read_sts(path, columns=columns, header=header, score_range=score_range)
    timer = _Timer(setting, setting.symmetric_encoder(), batch_size)
    cosines = _cosine_pairs(timer, pairs.texts1, pairs.texts2)
    values = metrics.correlations(cosines, np.asarray(pairs.values))
    return _result("sts", pairs.path, setting, timer, "spearman", values, len(pairs.values), start)


def evaluate_pairs(
    path: str | Path,
    setting: Setting = DEFAULT,
    *,
    columns: tuple[Column, Column, Column] | None = None,
    header: bool | None = None,
    batch_size: int = 64,
) -> TaskResult:
    """Pair classification: AP, best F1 and best accuracy (×100) of cosine similarity."""
    start = time.perf_counter()
    pairs = read_pair_labels(path, columns=columns, header=header)
    timer = _Timer(setting, setting.symmetric_encoder(), batch_size)
    cosines = _cosine_pairs(timer, pairs.texts1, pairs.texts2)
    values = metrics.pair_classification(cosines, np.asarray(pairs.values))
    return _result("pairs", pairs.path, setting, timer, "ap", values, len(pairs.values), start)


def evaluate_classification(
    path: str | Path,
    setting: Setting = DEFAULT,
    *,
    test: str | Path | None = None,
    columns: tuple[Column, Column] | None = None,
    header: bool | None = None,
    batch_size: int = 64,
    folds: int = 5,
) -> TaskResult:
    """Logistic regression on the embeddings: train on `path`, score on `test` (or k-fold CV)."""
    LogisticRegression = require("sklearn.linear_model", "eval", "Classification").LogisticRegression
    scores = require("sklearn.metrics", "eval", "Classification")
    accuracy_score, f1_score = scores.accuracy_score, scores.f1_score
    selection = require("sklearn.model_selection", "eval", "Classification")
    StratifiedKFold, cross_val_predict = selection.StratifiedKFold, selection.cross_val_predict

    start = time.perf_counter()
    train = read_labelled(path, columns=columns, header=header)
    timer = _Timer(setting, setting.symmetric_encoder(), batch_size)
    model = LogisticRegression(max_iter=1000)
    x_train = timer(train.texts)
    if test is not None:
        held_out = read_labelled(test, columns=columns, header=header)
        gold, predicted = held_out.labels, model.fit(x_train, train.labels).predict(timer(held_out.texts))
    else:
        smallest = min(train.labels.count(label) for label in set(train.labels))
        if smallest < folds:
            raise InputError(
                f"{path}: a class has only {smallest} example(s); {folds}-fold cross-validation "
                f"needs {folds}. Pass --test."
            )
        splits = StratifiedKFold(n_splits=folds, shuffle=True, random_state=0)
        gold, predicted = train.labels, cross_val_predict(model, x_train, train.labels, cv=splits)
    values = {
        "accuracy": 100.0 * accuracy_score(gold, predicted),
        "macro_f1": 100.0 * f1_score(gold, predicted, average="macro"),
    }
    return _result("classification", train.path, setting, timer, "accuracy", values, len(gold), start)


def evaluate_clustering(
    path: str | Path,
    setting: Setting = DEFAULT,
    *,
    columns: tuple[Column, Column] | None = None,
    header: bool | None = None,
    batch_size: int = 64,
) -> TaskResult:
    """k-means with k = number of labels; V-measure (×100) against the labels."""
    KMeans = require("sklearn.cluster", "eval", "Clustering").KMeans
    v_measure_score = require("sklearn.metrics", "eval", "Clustering").v_measure_score

    start = time.perf_counter()
    data = read_labelled(path, columns=columns, header=header)
    timer = _Timer(setting, setting.symmetric_encoder(), batch_size)
    vectors = timer(data.texts)
    clusters = KMeans(n_clusters=len(set(data.labels)), n_init=10, random_state=0).fit_predict(vectors)
    values = {"v_measure": 100.0 * float(v_measure_score(data.labels, clusters))}
    return _result("clustering", data.path, setting, timer, "v_measure", values, len(data.labels), start)


TASKS: dict[str, Any] = {
    "sts": evaluate_sts,
    "pairs": evaluate_pairs,
    "classification": evaluate_classification,
    "clustering": evaluate_clustering,
}
