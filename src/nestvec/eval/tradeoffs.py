"""Trade-offs of index settings on one workload: quality, memory, speed, build time (`nestvec plan`).

Each candidate is a recipe (the workload's, with other index fields and dims), so a row of the
table is a recipe that `nestvec plan --apply` or `Collection.create` takes as it is written.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from nestvec.errors import InputError
from nestvec.eval import metrics
from nestvec.eval.pareto import pareto_front
from nestvec.eval.workload import Workload
from nestvec.index.spec import UNSUPPORTED, IndexSpec
from nestvec.index.vector_index import VectorIndex
from nestvec.recipe import Recipe
from nestvec.recipe import fields as table
from nestvec.transforms import Truncate


@dataclass
class Measurement:
    setting: str  # the index fields and dims in the recipe grammar
    dims: int
    strategy: str
    codes: str
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
    codes: Sequence[str],
    strategies: Sequence[str],
    rescores: Sequence[int] = (4,),
    base: Recipe | None = None,
) -> list[Recipe]:
    """The grid of recipes; float32 codes are exact already, so rescoring variants apply to the others."""
    widths = sorted({d for d in (dims or (dim, dim // 2, dim // 4)) if d >= 8}, reverse=True)
    for width in widths:
        if width > dim:
            raise InputError(f"dims={width} exceeds the vectors' {dim} dimensions.")
    start = base or Recipe()
    out = []
    for d, s, c in itertools.product(widths, strategies, codes):
        table.field("index").check(s), table.field("codes").check(c)  # names checked even where pairs are skipped
        if (s, c) in UNSUPPORTED:
            continue
        for r in [0] if c == "float32" else list(dict.fromkeys(rescores)):
            out.append(start.with_values(index=s, codes=c, rescore=r, dims=d))
    return out


def label(recipe: Recipe) -> str:
    """A candidate's index fields and dims, as the recipe grammar writes them."""
    spec, defaults = recipe.index, IndexSpec()
    parts = [f"index={spec.strategy}", f"codes={spec.codes}"]
    if spec.rescores:
        parts.append(f"rescore={spec.rescore}")
    for f in table.in_part("index"):
        value = getattr(spec, f.attribute)
        if f.name not in ("index", "codes", "rescore") and value != getattr(defaults, f.attribute):
            parts.append(f"{f.name}={value}")
    return ":".join([*parts, f"dims={recipe.vectors.dims}"])


def measure_all(workload: Workload, options: Sequence[Recipe], *, k: int = 10) -> list[Measurement]:
    exact = _exact_rows(workload, k) if workload.qrels is None else None
    out = [measure(workload, c, k=k, exact=exact) for c in options]
    mark_pareto(out)
    return out


def measure(workload: Workload, candidate: Recipe, *, k: int, exact: list[set[int]] | None) -> Measurement:
    vectors, queries = workload.vectors, workload.queries
    width = candidate.vectors.dims or workload.dim
    spec = candidate.index
    if width < workload.dim:
        cut = Truncate(width)
        vectors, queries = cut.apply(vectors), cut.apply(queries)
    start = time.perf_counter()
    index = VectorIndex(spec, width)
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
        setting=label(candidate),
        dims=width,
        strategy=spec.strategy,
        codes=spec.codes,
        rescore=spec.rescore if spec.rescores else 0,
        quality_metric=metric,
        quality=quality,
        bytes_per_vector=spec.bytes_per_vector(width),
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
    """On the front: no other setting at least as good in quality, bytes and speed, and better in one."""
    front = pareto_front([(r.quality, -r.bytes_per_vector, r.qps) for r in rows])
    for row, on in zip(rows, front, strict=True):
        row.pareto = on
