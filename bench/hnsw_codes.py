"""faiss's HNSW over int8 codes (rescored with the float vectors) against float16 codes, alone.

The structure under `index=hnsw:codes=int8:rescore=4` against `index=hnsw:codes=float16:rescore=0`
(M 32, efConstruction 80, int8 ranges from 0.001 quantiles as collections train them), built on
bench/search.py's mixed real MiniLM vectors and searched with its 1,000 held-out queries one at a
time on one thread, each graph collapsed into huge pages first (index/hugepages.py): recall@10
against exact search and p50 latency per efSearch. No collection, store or Python around it.

Usage: python bench/hnsw_codes.py [--n 200000] [--real 250000] [--out bench/results/hnsw-codes.json]
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
from nestvec.index import hugepages  # noqa: E402

SETTINGS = {"int8": ("HNSW32_SQ8", (0, 4)), "float16": ("HNSW32_SQfp16", (0,))}
EFS = (32, 48, 64, 72, 96)


def build(key: str, data: np.ndarray):
    import faiss

    index = faiss.index_factory(data.shape[1], key, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = 80
    if key.endswith("SQ8"):
        sq = faiss.downcast_index(index.storage).sq
        sq.rangestat, sq.rangestat_arg = faiss.ScalarQuantizer.RS_quantiles, 0.001
    index.train(data[:50_000])
    index.add(data)
    thread = hugepages.advise(index)
    if thread is not None:
        thread.join()
    return index


def sweep(index, data: np.ndarray, queries: np.ndarray, exact: np.ndarray, rescore: int, ef: int) -> dict:
    import faiss

    fetch = 10 * rescore if rescore else 10
    params = faiss.SearchParametersHNSW(efSearch=max(ef, fetch))
    lat, found = [], []
    for q in queries:
        start = time.perf_counter()
        _, ids = index.search(q[None], fetch, params=params)
        if rescore:
            ids = ids[:, np.argsort(-(data[ids[0]] @ q))[:10]]
        lat.append(time.perf_counter() - start)
        found.append(ids[0][:10].tolist())
    return {
        "ef_search": ef,
        "rescore": rescore,
        "recall_at_10": search.recall_at_10(found, exact),
        "p50_ms": 1e3 * float(np.percentile(lat, 50)),
    }


def main() -> None:
    import faiss

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--real", type=int, default=250_000)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "hnsw-codes.json")
    args = parser.parse_args()
    data_path, queries_path = search.dataset(args.n, args.real)
    data, queries = np.load(data_path), np.load(queries_path).astype(np.float32)
    exact = search.truth(data_path, queries_path, 2)
    results = {}
    for codes, (key, rescores) in SETTINGS.items():
        start = time.perf_counter()
        index = build(key, data)
        built = time.perf_counter() - start
        faiss.omp_set_num_threads(1)
        rows = [sweep(index, data, queries, exact, r, ef) for ef in EFS for r in rescores]
        faiss.omp_set_num_threads(2)
        results[codes] = {"faiss": key, "build_s": built, "searches": rows}
        for row in rows:
            print(codes, row, flush=True)
        del index
    search.save_results(args.out, {"n": args.n, "results": results})


if __name__ == "__main__":
    main()
