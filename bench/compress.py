"""Quality, memory and speed of compressed indexes on msmarco-5k with MiniLM (nestvec plan's engine).

The corpus and queries are embedded once; every setting is then built and searched through
nestvec's VectorIndex exactly as collections serve it, k = 100 candidates per query, best chunk
per document, nDCG@10 against the qrels.

Usage: python bench/compress.py [--data ../shared/data/retrieval/msmarco-5k] [--threads 2]
Writes bench/results/compress.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("NESTVEC_SHARED_DATA", ROOT.parent / "shared" / "data"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=SHARED / "retrieval" / "msmarco-5k")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "compress.json")
    args = parser.parse_args()
    import faiss
    import torch

    from nestvec.eval import candidates, from_beir, measure_all

    torch.set_num_threads(args.threads)
    faiss.omp_set_num_threads(args.threads)
    start = time.perf_counter()
    workload = from_beir(args.data)
    embed_s = time.perf_counter() - start
    grid = candidates(
        384,
        dims=[384, 256, 128, 64],
        codes=["float32", "float16", "int8", "binary", "rabitq"],
        strategies=["flat", "hnsw"],
        rescores=[0, 4, 10],
    )
    rows = measure_all(workload, grid)
    base = next(r for r in rows if r.setting == "index=flat:codes=float32:dims=384").quality
    for row in rows:
        print(
            f"{row.setting:44s} nDCG@10 {row.quality:6.2f} ({100 * row.quality / base:5.1f}% of float)  "
            f"{row.bytes_per_vector:6.0f} B/vector  {row.qps:7.0f} q/s{'  *front' if row.pareto else ''}",
            flush=True,
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"command": " ".join(sys.argv), "data": str(args.data), "k": 100, "embed_s": embed_s}
    meta["when"] = time.strftime("%F %T")
    payload = {"meta": meta, "results": [{**r.to_dict(), "ndcg@10_kept": r.quality / base} for r in rows]}
    args.out.write_text(json.dumps(payload, indent=2) + "\n")
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
