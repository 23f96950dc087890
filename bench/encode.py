"""Encoding throughput and peak memory: nestvec vs sentence-transformers, same model, same texts.

Each (library, dataset) run is a fresh subprocess, so peak RSS is that library's alone.
Usage: python bench/encode.py [--threads 2] [--rounds 1] [--out bench/results/encode.json]
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
STS = ROOT.parent / "shared" / "data" / "sts" / "stsb-en-test.csv"
PAPERS = ROOT / "examples" / "papers.jsonl"

CHILD = """
import json, resource, sys, time
import torch
threads, library, path = int(sys.argv[1]), sys.argv[2], sys.argv[3]
torch.set_num_threads(threads)
texts = json.load(open(path))
if library == "nestvec":
    import nestvec
    model = nestvec.load_encoder("minilm")
    run = lambda t: model.encode(t, batch_size=32, progress=False)
else:
    from sentence_transformers import SentenceTransformer
    from nestvec.encoders import resolve_model
    model = SentenceTransformer(str(resolve_model("minilm")[1]), device="cpu")
    run = lambda t: model.encode(t, batch_size=32, show_progress_bar=False)
run(texts[:64])
start = time.perf_counter()
vectors = run(texts)
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": seconds, "texts_per_s": len(texts) / seconds, "peak_rss_mb": peak}))
"""


def datasets() -> dict[str, list[str]]:
    with STS.open(encoding="utf-8") as fh:
        sentences = list(dict.fromkeys(s for row in csv.reader(fh) for s in row[:2]))
    abstracts = [json.loads(line)["text"] for line in PAPERS.open(encoding="utf-8")]
    return {"stsb_test_sentences": sentences, "demo_abstracts": abstracts}


def measure(library: str, texts_file: Path, threads: int) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(threads), library, str(texts_file)],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=1, help="alternate the libraries this many times; best kept")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "encode.json")
    args = parser.parse_args()
    results: dict[str, dict[str, object]] = {}
    tmp = ROOT / "bench" / "results" / ".texts.json"
    for name, texts in datasets().items():
        tmp.write_text(json.dumps(texts))
        runs: dict[str, list[dict[str, float]]] = {"nestvec": [], "sentence-transformers": []}
        for _ in range(args.rounds):
            for library in runs:
                runs[library].append(measure(library, tmp, args.threads))
        best = {lib: max(r, key=lambda x: x["texts_per_s"]) for lib, r in runs.items()}
        ratio = best["nestvec"]["texts_per_s"] / best["sentence-transformers"]["texts_per_s"]
        results[name] = {"texts": len(texts), **best, "speedup_vs_sentence_transformers": ratio}
        print(f"{name} ({len(texts)} texts, {args.threads} threads)")
        for lib, r in best.items():
            print(f"  {lib:22s} {r['texts_per_s']:8.1f} texts/s   peak RSS {r['peak_rss_mb']:7.0f} MB")
        print(f"  speedup {ratio:.2f}x")
    tmp.unlink()
    meta = {
        "threads": args.threads,
        "rounds": args.rounds,
        "machine": platform.machine(),
        "when": time.strftime("%F %T"),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"meta": meta, "results": results}, indent=2) + "\n")
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
