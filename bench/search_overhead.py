"""What a collection adds to its index's search, one query at a time, for one or more source trees.

Opens a collection built by bench/stores.py's protocol (or any collection of unit vectors) and
answers bench/search.py's 1,000 held-out real queries three ways, interleaved over `--rounds`:
faiss alone (the index's structure, no rescoring), the index (codes, rescoring, ranking) and the
collection (`search_vectors`: the index plus the store's version check and its hits' rows and
documents). Each tree runs in its own process (`--srcs`, PYTHONPATH) on the same folder, so the
difference between trees is the code alone.

Usage: python bench/search_overhead.py FOLDER [--srcs OLD/src,src] [--rounds 3] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
import realdata  # noqa: E402

CHILD = r"""
import json, sys, time
from pathlib import Path
import numpy as np
import nestvec
folder, queries, rounds = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
Q = np.load(queries).astype(np.float32)
c = nestvec.Collection.open(folder)
index = c._live.loaded
fetch = 10 * index.spec.rescore if index.spec.rescores else 10
ways = {
    "faiss": lambda q: index._faiss_search(q, fetch, None),
    "index": lambda q: index.search(q, 10),
    "collection": lambda q: c.search_vectors(q, k=10),
}
for q in Q[:200]:
    c.search_vectors(q[None], k=10)
try:  # trees that collapse a loaded index into huge pages are timed after it
    from nestvec.index import hugepages
    hugepages.wait()
except ImportError:
    pass
out = {name: [] for name in ways}
for _ in range(rounds):
    for name, way in ways.items():
        lat = []
        for q in Q:
            start = time.perf_counter(); way(q[None]); lat.append(time.perf_counter() - start)
        out[name].append(lat)
def stats(runs):
    lat = np.array(runs)
    pct = lambda p: 1e3 * float(np.median([np.percentile(r, p) for r in lat]))
    return {"p50_ms": pct(50), "p99_ms": pct(99), "mean_ms": 1e3 * float(np.median(lat.mean(axis=1)))}
print(json.dumps({name: stats(runs) for name, runs in out.items()}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--srcs", default="src", help="comma-separated source trees, each run on the folder")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--real", type=int, default=250_000)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "search-overhead.json")
    args = parser.parse_args()
    queries = realdata.CACHE / f"real-{args.real}-queries.npy"
    results = {}
    for src in args.srcs.split(","):
        env = {**os.environ, "PYTHONPATH": str(Path(src).resolve())}
        done = subprocess.run(
            [sys.executable, "-c", CHILD, str(args.folder), str(queries), str(args.rounds)],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        if done.returncode:
            raise SystemExit(f"{src} failed:\n{done.stderr[-3000:]}")
        results[src] = json.loads(done.stdout.strip().splitlines()[-1])
        added = results[src]["collection"]["p50_ms"] - results[src]["index"]["p50_ms"]
        print(src, json.dumps(results[src]), f"collection adds {added:.3f} ms at p50", flush=True)
    command = "python bench/search_overhead.py " + " ".join(sys.argv[1:])
    record = {"command": command, "machine": platform.processor() or platform.machine(), "results": results}
    args.out.write_text(json.dumps({**record, "date": time.strftime("%Y-%m-%d")}, indent=2) + "\n")
    print("saved", args.out)


if __name__ == "__main__":
    main()
