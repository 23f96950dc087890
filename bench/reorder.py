"""An HNSW graph's rows in insertion order against renumbered by cluster (index/layout.py), alone.

faiss's HNSW32 over float16 codes (efConstruction 80, as `index=hnsw:codes=float16` builds it) on
bench/search.py's mixed real MiniLM vectors, then the same graph with its rows permuted by
`layout.cluster_order`; each searched with the 1,000 held-out queries one at a time on one thread
(efSearch 72), two ways: mapped from its file as `mmap=yes` reads it (4 KB page-cache pages), and
read into private memory collapsed into 2 MB pages (index/hugepages.py). p50 / mean latency and
recall@10 against exact search (equal for both orders: the graph is the same); the four cases take
turns for `--rounds` rounds and the best round of each is kept. No collection or Python around it.

Usage: python bench/reorder.py [--n 1000000] [--real 250000] [--rounds 3] [--graph FILE]
       [--out bench/results/reorder.json]
The graph is built once and kept in bench/.cache (a 1M build takes several minutes on 2 cores);
`--graph` takes one already built over the same rows in order, such as the codes file of a
collection `bench/stores.py` filled with `index=hnsw:codes=float16`.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
import search  # noqa: E402
from nestvec.index import hugepages, layout  # noqa: E402

EF_SEARCH = 72


def graph(data: np.ndarray, path: Path) -> None:
    import faiss

    if path.exists():
        return
    index = faiss.index_factory(data.shape[1], "HNSW32_SQfp16", faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = 80
    index.train(data[:50_000])
    index.add(data)
    faiss.write_index(index, str(path))


def reordered(data: np.ndarray, source: Path, path: Path) -> tuple[np.ndarray, float]:
    import faiss

    start = time.perf_counter()
    order = layout.cluster_order(len(data), lambda rows: data[rows], data.shape[1])
    seconds = time.perf_counter() - start
    index = faiss.read_index(str(source))
    index.permute_entries(order)
    faiss.write_index(index, str(path))
    return order, seconds


def timed(path: Path, mapped: bool, queries: np.ndarray, order: np.ndarray | None) -> dict:
    import faiss

    index = faiss.read_index(str(path), faiss.IO_FLAG_MMAP_IFC if mapped else 0)
    if not mapped:
        hugepages.collapse([s for s in hugepages._aligned(hugepages.arrays(index)) if s[1] >= hugepages.HUGE_PAGE])
    params = faiss.SearchParametersHNSW(efSearch=EF_SEARCH)
    for q in queries[:200]:
        index.search(q[None], 10, params=params)
    lat, found = [], []
    for q in queries:
        start = time.perf_counter()
        _, ids = index.search(q[None], 10, params=params)
        lat.append(time.perf_counter() - start)
        found.append((ids[0] if order is None else order[ids[0]]).tolist())
    return {"p50_ms": 1e3 * float(np.percentile(lat, 50)), "mean_ms": 1e3 * float(np.mean(lat)), "found": found}


def main() -> None:
    import faiss

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--real", type=int, default=250_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "reorder.json")
    parser.add_argument("--graph", type=Path, help="that HNSW already built over the same rows in order (a file)")
    args = parser.parse_args()
    data_path, queries_path = search.dataset(args.n, args.real)
    data, queries = np.load(data_path, mmap_mode="r"), np.load(queries_path).astype(np.float32)
    exact = search.truth(data_path, queries_path, 2)
    plain = args.graph or ROOT / "bench" / ".cache" / f"reorder-hnsw32-fp16-{args.n}.faiss"
    graph(np.ascontiguousarray(data), plain)
    ordered = ROOT / "bench" / ".cache" / f"reorder-hnsw32-fp16-{args.n}-clustered.faiss"
    order, order_seconds = reordered(data, plain, ordered)
    faiss.omp_set_num_threads(1)
    orders = (("insertion", plain, None), ("clustered", ordered, order))
    cases = {(name, mapped): (path, perm) for name, path, perm in orders for mapped in (True, False)}
    rounds: dict[str, list[dict]] = {}
    for _ in range(args.rounds):
        for (name, mapped), (path, perm) in cases.items():
            out = timed(path, mapped, queries, perm)
            out["recall_at_10"] = search.recall_at_10(out.pop("found"), exact)
            key = f"{name} order, {'mapped (mmap=yes)' if mapped else 'private, 2 MB pages'}"
            rounds.setdefault(key, []).append(out)
            print(key, {k: round(v, 4) for k, v in out.items()}, flush=True)
    best = {key: min(runs, key=lambda r: r["p50_ms"]) for key, runs in rounds.items()}
    clusters = min(layout.MAX_CLUSTERS, max(2, args.n // layout.ROWS_PER_CLUSTER))
    fields = {"n": args.n, "clusters": clusters, "cluster_order_seconds": order_seconds, "ef_search": EF_SEARCH}
    search.save_results(args.out, {**fields, "best": best, "rounds": rounds})


if __name__ == "__main__":
    main()
