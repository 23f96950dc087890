"""Hybrid retrieval: how the fusion defaults were chosen, what they score, and what they cost.

1. quality: nDCG@10 of dense, BM25 and hybrid on the two dev sets (the default dense_weight is the
   one with the largest keyword-dev gain that loses nothing on the paraphrase dev set), then the
   defaults once on msmarco-5k and on the keyword test split.
2. latency: per-query p50/p99 of dense, sparse and hybrid on a collection of --docs real texts
   (bench/realdata.py's corpus), 500 held-out queries, 2 threads.

Usage: python bench/hybrid.py [--docs 100000] [--skip-quality] [--skip-latency]
Writes bench/results/hybrid.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("NESTVEC_SHARED_DATA", ROOT.parent / "shared" / "data"))
HYBRID = ROOT / "tests" / "data" / "hybrid"
WEIGHTS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8)


def quality() -> dict:
    from nestvec.eval import Setting, evaluate_retrieval

    base = Setting.parse("minilm")
    grid = [("dense", base), ("sparse", replace(base, mode="sparse"))]
    grid += [(f"weighted {w}", replace(base, mode="hybrid", dense_weight=w)) for w in WEIGHTS]
    grid += [(f"rrf {w}", replace(base, mode="hybrid", fusion="rrf", dense_weight=w)) for w in (0.5, 0.6)]
    out: dict = {"dev": {}, "test": {}}
    for name, folder in (("keywords", HYBRID / "papers-keywords"), ("paraphrase", HYBRID / "stsb-paraphrase-dev")):
        out["dev"][name] = {label: evaluate_retrieval(folder, s, split="dev").main for label, s in grid}
        print(name, "dev:", {k: round(v, 2) for k, v in out["dev"][name].items()}, flush=True)
    defaults = [("dense", base), ("sparse", grid[1][1]), ("hybrid (defaults)", replace(base, mode="hybrid"))]
    defaults.append(("hybrid rrf", replace(base, mode="hybrid", fusion="rrf")))
    tests = (
        ("msmarco-5k", SHARED / "retrieval" / "msmarco-5k", "test"),
        ("keywords", HYBRID / "papers-keywords", "test"),
    )
    for name, folder, split in tests:
        out["test"][name] = {label: evaluate_retrieval(folder, s, split=split).main for label, s in defaults}
        print(name, "test:", {k: round(v, 2) for k, v in out["test"][name].items()}, flush=True)
    return out


def latency(docs: int, threads: int) -> dict:
    import faiss
    import torch

    from nestvec import Collection

    sys.path.insert(0, str(ROOT / "bench"))
    import realdata

    torch.set_num_threads(threads)
    faiss.omp_set_num_threads(threads)
    corpus, queries = realdata.collect(250_000)
    path = realdata.CACHE / f"hybrid-{docs}"  # kept: rerunning the latency part needs no re-embedding
    build_file = realdata.CACHE / f"hybrid-{docs}.build.json"
    if not path.exists():
        start = time.perf_counter()
        tmp = Path(tempfile.mkdtemp(prefix="nestvec-hybrid-", dir=realdata.CACHE))
        with Collection.create(tmp / "c") as collection:
            collection.add([{"id": str(i), "text": t} for i, t in enumerate(corpus[:docs])], batch_size=1024)
        (tmp / "c").rename(path)
        shutil.rmtree(tmp)
        build_file.write_text(json.dumps({"build_s": time.perf_counter() - start}))
    out: dict = {"docs": docs, **json.loads(build_file.read_text())}
    with Collection.open(path) as collection:
        for mode in ("dense", "sparse", "hybrid"):
            collection.search_batch(queries[:20], k=10, mode=mode)  # warm
            times = []
            for query in queries[:500]:
                t = time.perf_counter()
                collection.search(query, k=10, mode=mode)
                times.append(1000 * (time.perf_counter() - t))
            out[mode] = {"p50_ms": float(np.percentile(times, 50)), "p99_ms": float(np.percentile(times, 99))}
            print(mode, out[mode], flush=True)
        out["sparse_budget"] = budget_agreement(path, queries[:500])
        print("BM25 with the posting budget vs every term:", out["sparse_budget"], flush=True)
    out["hybrid_over_dense_p50"] = out["hybrid"]["p50_ms"] / out["dense"]["p50_ms"]
    out["hybrid_over_dense_p99"] = out["hybrid"]["p99_ms"] / out["dense"]["p99_ms"]
    return out


def budget_agreement(path: Path, queries: list[str]) -> dict:
    """What the posting budget costs: top-10 overlap of BM25 with and without it, and the speed-up."""
    from nestvec.store.keywords import KeywordReader
    from nestvec.store.sparse import SparseSpec

    readers = {
        name: KeywordReader(path / "store.sqlite3", SparseSpec(max_postings=m))
        for name, m in (("budget", SparseSpec().max_postings), ("all", None))
    }
    found: dict[str, list[list[str]]] = {}
    times: dict[str, list[float]] = {}
    for name, reader in readers.items():
        found[name], times[name] = [], []
        for query in queries:
            t = time.perf_counter()
            found[name].append([doc for doc, _ in reader.search(query, 10, None, [])])
            times[name].append(1000 * (time.perf_counter() - t))
        reader.close()
    overlap = [len(set(a) & set(b)) / max(1, len(b)) for a, b in zip(found["budget"], found["all"], strict=True)]
    return {
        "max_postings": SparseSpec().max_postings,
        "top10_overlap_mean": float(np.mean(overlap)),
        "queries_unchanged": float(np.mean([a == b for a, b in zip(found["budget"], found["all"], strict=True)])),
        **{f"{name}_p{q}_ms": float(np.percentile(t, q)) for name, t in times.items() for q in (50, 99)},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--skip-quality", action="store_true")
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "hybrid.json")
    args = parser.parse_args()
    result: dict = {"command": " ".join(sys.argv), "when": time.strftime("%F %T")}
    if args.out.exists():
        result = {**json.loads(args.out.read_text()), **result}
    if not args.skip_quality:
        result["quality"] = quality()
    if not args.skip_latency:
        result["latency"] = latency(args.docs, args.threads)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
