"""Evaluation tasks: each encodes its data with a Setting and returns a typed TaskResult."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nestvec.encoders import Encoder, load_encoder
from nestvec.errors import InputError
from nestvec.eval import metrics
from nestvec.eval.readers import Column, read_labelled, read_pair_labels, read_sts
from nestvec.index.spec import IndexSpec
from nestvec.store.fusion import Fusion, check_mode
from nestvec.transforms import PRECISIONS, Truncate, Whiten
from nestvec.transforms.reduce import normalize

INDEX_ONLY = ("rabitq",)  # index code precisions with no vector transform of their own
_OPTIONS = ("dims", "whiten", "precision", "rescore", "index", "mode", "fusion", "dense_weight", "backend", "compute")


@dataclass(frozen=True)
class Setting:
    """A model, how it runs and how its vectors are shrunk. Specs: 'minilm', 'minilm:dims=128:precision=int8',
    'minilm:backend=onnx:compute=int8' (compute: the network's arithmetic; precision: the stored vectors').

    Fitted steps (whitening, int8 ranges) are fitted on the vectors being evaluated.
    """

    model: str = "minilm"
    dims: int | None = None
    whiten: bool = False
    precision: str = "float32"
    rescore: int | None = None  # retrieval with codes below float32: rescore k × this many candidates
    index: str = "flat"  # retrieval search strategy: flat, hnsw or ivf
    mode: str = "dense"  # retrieval: dense, sparse (BM25) or hybrid
    fusion: str = "weighted"  # hybrid retrieval: weighted or rrf
    dense_weight: float | None = None  # hybrid retrieval: the dense side's weight (default: Fusion's)
    backend: str = "auto"  # transformer models: auto, torch or onnx
    compute: str = "fp32"  # transformer models: fp32, int8 (onnx), bf16 (torch), fp16 (torch on CUDA)

    def __post_init__(self) -> None:
        IndexSpec.make(self.index, self.precision)  # validates the name and its pairing with the index
        if self.precision not in INDEX_ONLY:
            PRECISIONS[self.precision]
        check_mode(self.mode)
        self.search_fusion()

    def search_fusion(self) -> Fusion:
        if self.dense_weight is None:
            return Fusion(method=self.fusion)
        return Fusion(method=self.fusion, dense_weight=self.dense_weight)

    @classmethod
    def parse(cls, spec: str) -> Setting:
        model, *options = spec.split(":")
        values: dict[str, str] = {}
        for option in options:
            key, sep, value = option.partition("=")
            if not sep or key not in _OPTIONS:
                raise InputError(
                    f"Setting option {option!r} in {spec!r} is not understood; "
                    "valid: dims=N, whiten=yes, precision=P, rescore=N, index=flat|hnsw|ivf, "
                    "mode=dense|sparse|hybrid, fusion=weighted|rrf, dense_weight=W, backend=B, compute=C."
                )
            values[key] = value
        dims = values.get("dims")
        if dims is not None and (not dims.isdigit() or int(dims) < 1):
            raise InputError(f"dims must be a positive integer, got {dims!r} in {spec!r}.")
        whiten = values.get("whiten", "no").lower() in ("yes", "true", "1")
        rescore = values.get("rescore")
        if rescore is not None and not rescore.isdigit():
            raise InputError(f"rescore must be a non-negative integer, got {rescore!r} in {spec!r}.")
        precision = values.get("precision", "float32")
        return cls(
            model or "minilm",
            int(dims) if dims else None,
            whiten,
            precision,
            int(rescore) if rescore else None,
            values.get("index", "flat"),
            values.get("mode", "dense"),
            values.get("fusion", "weighted"),
            _float(values.get("dense_weight"), "dense_weight", spec),
            values.get("backend", "auto"),
            values.get("compute", "fp32"),
        )

    @property
    def label(self) -> str:
        parts = [self.model]
        if self.backend != "auto":
            parts.append(f"backend={self.backend}")
        if self.compute != "fp32":
            parts.append(f"compute={self.compute}")
        if self.whiten:
            parts.append("whiten=yes")
        if self.dims:
            parts.append(f"dims={self.dims}")
        if self.precision != "float32":
            parts.append(f"precision={self.precision}")
        if self.rescore is not None:
            parts.append(f"rescore={self.rescore}")
        if self.index != "flat":
            parts.append(f"index={self.index}")
        if self.mode != "dense":
            parts.append(f"mode={self.mode}")
        if self.mode == "hybrid":
            parts.append(f"fusion={self.fusion}")
            if self.dense_weight is not None:
                parts.append(f"dense_weight={self.dense_weight:g}")
        return ":".join(parts)

    def retrieval_key(self) -> tuple[Any, ...]:
        """What the corpus collection depends on (the search mode does not)."""
        return (self.model, self.backend, self.compute, self.dims, self.precision, self.rescore, self.index)

    def encoder(self) -> Encoder:
        encoder = load_encoder(self.model, backend=self.backend, precision=self.compute)
        if self.dims is not None and self.dims > encoder.dim:
            raise InputError(f"dims={self.dims} exceeds the model's {encoder.dim} dimensions.")
        return encoder

    def steps(self) -> list[Any]:
        if self.precision in INDEX_ONLY:
            raise InputError(
                f"precision={self.precision} names codes that exist only inside a collection's index, so only "
                "retrieval settings can use it; STS, classification and clustering compare the vectors "
                "themselves: use precision=binary (or int8) there."
            )
        steps: list[Any] = []
        if self.whiten:
            steps.append(Whiten(self.dims))
        elif self.dims is not None:
            steps.append(Truncate(self.dims))
        precision = PRECISIONS[self.precision]
        if precision is not type(None):
            steps.append(precision())
        return steps

    def bytes_per_vector(self, encoder: Encoder) -> int:
        if self.precision in INDEX_ONLY:
            return IndexSpec.make(self.index, self.precision).bytes_per_code(self.dims or encoder.dim)
        dim, size = encoder.dim, 4 * encoder.dim
        for step in self.steps():
            size = step.bytes_per_vector(dim)
            dim = step.output_dim(dim)
        return size

    def apply(self, vectors: np.ndarray) -> np.ndarray:
        """Fit the steps on `vectors`, apply them, and decode codes back to comparable floats."""
        out = vectors
        for step in self.steps():
            step = step.fit(out)
            out = step.apply(out)
            if hasattr(step, "decode"):
                out = step.decode(out)
        return np.ascontiguousarray(out, dtype=np.float32)


def _float(value: str | None, name: str, spec: str) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        raise InputError(f"{name} must be a number, got {value!r} in {spec!r}.") from None


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
    setting: Setting = Setting(),
    *,
    columns: tuple[Column, Column, Column] = (0, 1, 2),
    header: bool | None = None,
    score_range: tuple[float, float] = (0.0, 5.0),
    batch_size: int = 64,
) -> TaskResult:
    """Spearman and Pearson (×100) between cosine similarity and the gold scores."""
    start = time.perf_counter()
    pairs = read_sts(path, columns=columns, header=header, score_range=score_range)
    timer = _Timer(setting, setting.encoder(), batch_size)
    cosines = _cosine_pairs(timer, pairs.texts1, pairs.texts2)
    values = metrics.correlations(cosines, np.asarray(pairs.values))
    return _result("sts", pairs.path, setting, timer, "spearman", values, len(pairs.values), start)


def evaluate_pairs(
    path: str | Path,
    setting: Setting = Setting(),
    *,
    columns: tuple[Column, Column, Column] = (0, 1, 2),
    header: bool | None = None,
    batch_size: int = 64,
) -> TaskResult:
    """Pair classification: AP, best F1 and best accuracy (×100) of cosine similarity."""
    start = time.perf_counter()
    pairs = read_pair_labels(path, columns=columns, header=header)
    timer = _Timer(setting, setting.encoder(), batch_size)
    cosines = _cosine_pairs(timer, pairs.texts1, pairs.texts2)
    values = metrics.pair_classification(cosines, np.asarray(pairs.values))
    return _result("pairs", pairs.path, setting, timer, "ap", values, len(pairs.values), start)


def evaluate_classification(
    path: str | Path,
    setting: Setting = Setting(),
    *,
    test: str | Path | None = None,
    columns: tuple[Column, Column] = (0, 1),
    header: bool | None = None,
    batch_size: int = 64,
    folds: int = 5,
) -> TaskResult:
    """Logistic regression on the embeddings: train on `path`, score on `test` (or k-fold CV)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    start = time.perf_counter()
    train = read_labelled(path, columns=columns, header=header)
    timer = _Timer(setting, setting.encoder(), batch_size)
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
    setting: Setting = Setting(),
    *,
    columns: tuple[Column, Column] = (0, 1),
    header: bool | None = None,
    batch_size: int = 64,
) -> TaskResult:
    """k-means with k = number of labels; V-measure (×100) against the labels."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import v_measure_score

    start = time.perf_counter()
    data = read_labelled(path, columns=columns, header=header)
    timer = _Timer(setting, setting.encoder(), batch_size)
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
