"""What an HNSW graph costs to build against what it saves at search time, alone (no store around it).

The profile behind the ingest column of bench/stores.py: a collection with `index=hnsw` inserts
every row into the graph as it arrives, and on 2 cores that insertion, not the store, sets its
ingest rate. For each (M, efConstruction) asked: faiss's HNSW over float16 codes (as
`index=hnsw:codes=float16` builds it) filled from bench/search.py's mixed real MiniLM vectors in
batches of 5,000 as `Collection.add` hands them over (`--threads` OpenMP threads), build rows/s;
then its rows put in cluster order (index/layout.py, as a collection's checkpoint does) and the
1,000 held-out queries searched one at a time on one thread for each efSearch of the sweep:
recall@10 against exact search, p50 / mean ms. `cheapest_at_095` is the lowest efSearch that
reaches recall@10 0.95.

Usage: python bench/graph_build.py [--n 1000000] [--real 250000] [--graphs 32:80 32:40 24:40 16:40]
       [--threads 2] [--out bench/results/graph-build.json]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
import search  # noqa: E402
from nestvec.index import layout  # noqa: E402

BATCH = 5_000
EF_SWEEP = (48, 64, 72, 96, 128, 160, 192, 256)


def build(data: np.ndarray, m: int, ef_construction: int) -> tuple[Any, float]:
    import faiss

    index = faiss.index_factory(data.shape[1], f"HNSW{m}_SQfp16", faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = ef_construction
    start = time.perf_counter()
    index.train(np.ascontiguousarray(data[:BATCH]))
    for lo in range(0, len(data), BATCH):
        index.add(np.ascontiguousarray(data[lo : lo + BATCH]))
    return index, time.perf_counter() - start


def sweep(index: Any, queries: np.ndarray, exact: np.ndarray, threads: int) -> list[dict[str, float]]:
    import faiss

    faiss.omp_set_num_threads(1)  # one query at a time, as a collection's searches run
    rows = []
    for ef in EF_SWEEP:
        params = faiss.SearchParametersHNSW(efSearch=ef)
        found, lat = [], []
        for q in queries:
            start = time.perf_counter()
            found.append(index.search(q[None, :], 10, params=params)[1][0])
            lat.append(time.perf_counter() - start)
        ms = 1000 * np.asarray(lat)
        rows.append({
            "ef_search": ef, "recall_at_10": search.recall_at_10(found, exact),
            "p50_ms": float(np.median(ms)), "mean_ms": float(ms.mean()),
        })  # fmt: skip
    faiss.omp_set_num_threads(threads)
    return rows


def measure(data: np.ndarray, queries: np.ndarray, exact: np.ndarray, m: int, efc: int, threads: int) -> dict:
    index, seconds = build(data, m, efc)
    order = np.asarray(layout.cluster_order(len(data), lambda rows: data[rows], data.shape[1]))
    index.permute_entries(order)
    # The graph's ids are now positions in cluster order: map the exact top 10 the same way.
    position = np.empty(len(order), dtype=np.int64)
    position[order] = np.arange(len(order))
    rows = sweep(index, queries, position[exact], threads)
    good = [r for r in rows if r["recall_at_10"] >= 0.95]
    result = {
        "hnsw_m": m, "ef_construction": efc, "build_s": seconds, "build_rows_per_s": len(data) / seconds,
        "sweep": rows, "cheapest_at_095": good[0] if good else None,
    }  # fmt: skip
    best = good[0] if good else None
    shown = f"efSearch {best['ef_search']} p50 {best['p50_ms']:.3f} ms" if best else "never reaches 0.95"
    print(f"M {m} efConstruction {efc}: {result['build_rows_per_s']:,.0f} rows/s; at recall 0.95: {shown}")
    return result


def main() -> None:
    import faiss

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--real", type=int, default=250_000)
    parser.add_argument("--graphs", nargs="+", default=["32:80", "32:40", "24:40", "16:40"], help="M:efConstruction")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "graph-build.json")
    args = parser.parse_args()
    faiss.omp_set_num_threads(args.threads)
    data_file, query_file = search.dataset(args.n, args.real)
    data = np.load(data_file, mmap_mode="r")
    queries = np.load(query_file).astype(np.float32)
    exact = search.truth(data_file, query_file, args.threads)
    graphs = [tuple(int(v) for v in g.split(":")) for g in args.graphs]
    results = [measure(data, queries, exact, m, efc, args.threads) for m, efc in graphs]
    search.save_results(args.out, {"n": args.n, "threads": args.threads, "batch": BATCH, "graphs": results})


if __name__ == "__main__":
    main()
