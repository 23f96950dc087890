"""Retrieval read back through an export target: what a database's own index and quantization
settings cost in quality and latency, against nestvec's exact search over the same vectors."""

from __future__ import annotations

import statistics
import time
from typing import Any

from nestvec.export import export_collection, open_target


def search_through(collection: Any, url: str, queries: list[str], *, k: int) -> tuple[list[dict[str, float]], float]:
    """Export `collection` to `url` (replacing what is there), search `queries` through the
    target's client: (document id → score per query, median milliseconds per query)."""
    export_collection(collection, url, overwrite=True)
    vectors = collection.embed_queries(queries)
    target = open_target(url)
    found, times = [], []
    try:
        for vector in vectors:
            start = time.perf_counter()
            hits = target.search(vector[None, :], k)[0]
            times.append(time.perf_counter() - start)
            rows = collection.chunk_rows([label for label, _ in hits])
            scores: dict[str, float] = {}
            for label, score in hits:  # a document's best chunk stands for it, as in nestvec's own search
                if label in rows:
                    doc = rows[label].doc_id
                    scores[doc] = max(score, scores.get(doc, float("-inf")))
            found.append(scores)
    finally:
        target.close()
    return found, 1000 * statistics.median(times) if times else 0.0
