"""Static-model encoding with 1 vs N processes on large inputs (STS-B train sentences and msmarco-5k
passages, repeated), same model, same texts, same run; saves bench/results/static-processes.json.

Usage: python bench/static_processes.py [--model FOLDER] [--processes 2]
(without --model, MiniLM is distilled to 256 dims into a temporary folder first, about 20 s)
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "static-processes.json")
    args = parser.parse_args()
    from nestvec.encoders.static import StaticEncoder
    from nestvec.train import distill

    with tempfile.TemporaryDirectory() as tmp:
        folder = args.model or Path(distill("minilm", Path(tmp) / "static", dims=256).path)
        encoder = StaticEncoder(folder)
        with (SHARED / "sts" / "stsb-en-train.csv").open(encoding="utf-8") as fh:
            sentences = list(dict.fromkeys(s for row in csv.reader(fh) for s in row[:2]))
        corpus = SHARED / "retrieval" / "msmarco-5k" / "corpus.jsonl"
        passages = [json.loads(line)["text"] for line in corpus.open(encoding="utf-8")]
        results = {}
        for name, texts in [("sentences", (sentences * 40)[:300_000]), ("passages", (passages * 40)[:120_000])]:
            encoder.encode(texts[:5000])
            start = time.perf_counter()
            one = encoder.encode(texts)
            single = len(texts) / (time.perf_counter() - start)
            start = time.perf_counter()
            many = encoder.encode(texts, processes=args.processes)
            multi = len(texts) / (time.perf_counter() - start)
            same = bool(np.array_equal(one, many))
            results[name] = {"texts": len(texts), "one_process_per_s": single, "processes_per_s": multi,
                             "ratio": multi / single, "identical": same}  # fmt: skip
            print(f"{name}: {len(texts)} texts, 1 process {single:,.0f}/s, {args.processes} processes "
                  f"{multi:,.0f}/s ({multi / single:.2f}x), identical {same}")  # fmt: skip
    meta = {"processes": args.processes, "cpus": os.cpu_count(), "when": time.strftime("%F %T")}
    args.out.write_text(json.dumps({"meta": meta, "results": results}, indent=2) + "\n")
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
