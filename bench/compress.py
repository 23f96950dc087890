"""Quality of compressed collections on msmarco-5k with MiniLM, through the real collection layer.

Usage: python bench/compress.py [--data ../shared/data/retrieval/msmarco-5k] [--out bench/results/compress.json]
Each setting builds a real collection (index + rescoring exactly as served) and scores the run.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from nestvec.eval import Setting, evaluate_retrieval

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = [
    "minilm",
    "minilm:precision=binary:rescore=0",
    "minilm:precision=binary:rescore=4",
    "minilm:precision=binary:rescore=10",
    "minilm:dims=256",
    "minilm:dims=128",
    "minilm:dims=64",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "retrieval" / "msmarco-5k")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "compress.json")
    parser.add_argument("--settings", nargs="*", default=SETTINGS)
    args = parser.parse_args()
    rows = []
    for spec in args.settings:
        result = evaluate_retrieval(args.data, Setting.parse(spec))
        rows.append(result.to_dict())
        print(
            f"{spec:40s} nDCG@10 {result.metrics['ndcg@10']:6.2f}  recall@100 {result.metrics['recall@100']:6.2f}  "
            f"{result.bytes_per_vector:5d} B/vector in RAM",
            flush=True,
        )
    base = rows[0]["metrics"]["ndcg@10"]
    for row in rows:
        row["ndcg@10_kept"] = row["metrics"]["ndcg@10"] / base
    args.out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"data": str(args.data), "k": 100, "when": time.strftime("%F %T")}
    args.out.write_text(json.dumps({"meta": meta, "results": rows}, indent=2) + "\n")
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
