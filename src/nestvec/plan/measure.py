"""Measure every index setting on one workload: quality, memory, speed, build time."""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from nestvec.errors import InputError
from nestvec.eval import metrics
from nestvec.index.spec import UNSUPPORTED, IndexSpec
from nestvec.index.vector_index import VectorIndex
from nestvec.plan.workload import Workload
from nestvec.transforms import Truncate


@dataclass(frozen=True)
class Candidate:
    dims: int
    spec: IndexSpec

    @property
    def label(self) -> str:
        return f"{self.spec.describe()} dims={self.dims}"


@dataclass
class Measurement:
    setting: str
    dims: int
    strategy: str
    precision: str
    rescore: int
    quality_metric: str
    quality: float
    bytes_per_vector: float
    ram_bytes: int
    qps: float
    p50_ms: float
    p99_ms: float
    build_s: float
    pareto: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def candidates(
    dim: int,
    *,
    dims: Sequence[int] | None,
    precisions: Sequence[str],
    strategies: Sequence[str],
    rescores: Sequence[int] = (4,),
) -> list[Candidate]:
    """The grid; float32 codes are exact already, so rescoring variants apply to the others."""
    widths = sorted({d for d in (dims or (dim, dim // 2, dim // 4)) if d >= 8}, reverse=True)
    for width in widths:
        if width > dim:
            raise InputError(f"dims={width} exceeds the vectors' {dim} dimensions.")
    out = []
    for d, s, p in itertools.product(widths, strategies, precisions):
        if (s, p) in UNSUPPORTED:
            continue
        for r in [0] if p == "float32" else list(dict.fromkeys(rescores)):
            out.append(Candidate(d, IndexSpec.make(s, p, rescore=r)))
    return out


def measure_all(workload: Workload, options: Sequence[Candidate], *, k: int = 10) -> list[Measurement]:
    exact = _exact_rows(workload, k) if workload.qrels is None else None
    out = [measure(workload, c, k=k, exact=exact) for c in options]
    mark_pareto(out)
    return out


def measure(workload: Workload, candidate: Candidate, *, k: int, exact: list[set[int]] | None) -> Measurement:
    vectors, queries = workload.vectors, workload.queries
    if candidate.dims < workload.dim:
        cut = Truncate(candidate.dims)
        vectors, queries = cut.apply(vectors), cut.apply(queries)
    start = time.perf_counter()
    index = VectorIndex(candidate.spec, candidate.dims)
    index.add(np.arange(len(vectors), dtype=np.int64), vectors)
    build = time.perf_counter() - start
    fetch = 10 * k if workload.qrels is not None else k  # room to keep one row per document
    results = index.search(queries, fetch)  # also warms caches and maps
    rounds, start = 0, time.perf_counter()
    while rounds < 3 or time.perf_counter() - start < 0.2:  # a few rounds, so small query sets time stably
        index.search(queries, fetch)
        rounds += 1
    qps = rounds * len(queries) / (time.perf_counter() - start)
    latencies = []
    for query in queries[:200]:
        start = time.perf_counter()
        index.search(query[None, :], fetch)
        latencies.append(1000 * (time.perf_counter() - start))
    metric, quality = _quality(workload, [r.labels for r in results], k, exact)
    return Measurement(
        setting=candidate.label,
        dims=candidate.dims,
        strategy=candidate.spec.strategy,
        precision=candidate.spec.precision,
        rescore=candidate.spec.rescore if candidate.spec.rescores else 0,
        quality_metric=metric,
        quality=quality,
        bytes_per_vector=candidate.spec.bytes_per_vector(candidate.dims),
        ram_bytes=index.ram_bytes(),
        qps=qps,
        p50_ms=float(np.percentile(latencies, 50)),
        p99_ms=float(np.percentile(latencies, 99)),
        build_s=build,
    )


def _exact_rows(workload: Workload, k: int) -> list[set[int]]:
    scores = workload.queries @ workload.vectors.T
    top = np.argsort(-scores, axis=1)[:, :k]
    return [set(row.tolist()) for row in top]


def _quality(workload: Workload, found: list[np.ndarray], k: int, exact: list[set[int]] | None) -> tuple[str, float]:
    if workload.qrels is None:
        assert exact is not None
        recall = np.mean([len(set(f[:k].tolist()) & e) / len(e) for f, e in zip(found, exact, strict=True)])
        return f"recall@{k} vs exact float", 100.0 * float(recall)
    run: dict[str, dict[str, float]] = {}
    for qid, rows in zip(workload.query_ids, found, strict=True):
        ranking: dict[str, float] = {}
        for rank, row in enumerate(rows.tolist()):
            ranking.setdefault(workload.row_docs[row], float(len(rows) - rank))  # best chunk per document
        run[qid] = ranking
    return "ndcg@10", metrics.retrieval_scores(run, workload.qrels, ("ndcg@10",))["ndcg@10"]


def mark_pareto(rows: list[Measurement]) -> None:
    """A setting is on the front when no other is at least as good in quality, bytes and speed, and better in one."""
    for row in rows:
        row.pareto = not any(
            other.quality >= row.quality
            and other.bytes_per_vector <= row.bytes_per_vector
            and other.qps >= row.qps
            and (other.quality, -other.bytes_per_vector, other.qps) != (row.quality, -row.bytes_per_vector, row.qps)
            for other in rows
        )
