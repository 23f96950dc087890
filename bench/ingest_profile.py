"""Where an HNSW collection's ingest goes: py-spy over `Collection.add` of precomputed vectors.

Adds the first `--rows` of bench/search.py's 1M mixed MiniLM vectors to a new collection in
batches of 5,000, as bench/stores.py does, under `py-spy record --native` (needs py-spy: `pip
install py-spy`), and reports the share of the main thread's samples whose stack holds each part
(faiss's OpenMP threads are not sampled; parts may nest). The profile behind bench/stores.py's
ingest column.

Usage: python bench/ingest_profile.py [--rows 300000] [--recipe ...] [--out bench/results/ingest-profile.json]
"""

from __future__ import annotations

import argparse
import collections
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
import search  # noqa: E402

RECIPE = "minilm:index=hnsw:codes=float16:rescore=0:ef_search=72:mmap=yes:bm25=false"
BATCH = 5_000
PARTS = {  # what the report calls a part: a name its frames carry
    "HNSW insertion (faiss hnsw_add_vertices)": "hnsw_add_vertices",
    "cluster order at checkpoints (layout.cluster_order, k-means included)": "cluster_order",
    "checkpoint saves (index/checkpoint.py)": "checkpoint.py",
    "store write (SQLiteStore.write)": "SQLiteStore.write",
    "document checks (as_document)": "as_document",
    "chunk plans (store/chunking.py)": "chunking",
}


def ingest(rows: int, recipe: str) -> None:
    import nestvec

    data, _ = search.dataset(1_000_000, 250_000)
    x = np.load(data, mmap_mode="r")[:rows]
    folder = Path(tempfile.mkdtemp(prefix="nestvec-ingest-", dir=ROOT / "bench" / ".cache"))
    try:
        start = time.perf_counter()
        with nestvec.Collection.create(folder / "c", recipe) as c:
            for lo in range(0, len(x), BATCH):
                ids = range(lo, min(lo + BATCH, len(x)))
                docs = [{"id": f"r{i}", "text": f"row {i}"} for i in ids]
                c.add(docs, vectors=np.ascontiguousarray(x[lo : lo + BATCH]))
        print(f"ingest rows/s {len(x) / (time.perf_counter() - start):.1f}", flush=True)
    finally:
        shutil.rmtree(folder)


def shares(raw: Path) -> tuple[int, dict[str, float]]:
    found: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, count = line.rsplit(" ", 1)
        total += int(count)
        found.update({name: int(count) for name, frame in PARTS.items() if frame in stack})
    return total, {name: found[name] / max(total, 1) for name in PARTS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=300_000)
    parser.add_argument("--recipe", default=RECIPE)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "ingest-profile.json")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        ingest(args.rows, args.recipe)
        return
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.txt"
        child = [sys.executable, __file__, "--child", "--rows", str(args.rows), "--recipe", args.recipe]
        done = subprocess.run([spy, "record", "--native", "-r", "50", "-f", "raw", "-o", str(raw), "--", *child],
                              capture_output=True, text=True)  # fmt: skip
        if done.returncode:
            raise SystemExit(f"py-spy failed:\n{done.stderr[-2000:]}")
        samples, share = shares(raw)
    rate = next(float(line.split()[-1]) for line in done.stdout.splitlines() if line.startswith("ingest rows/s"))
    for name, value in share.items():
        print(f"{100 * value:5.1f}%  {name}")
    search.save_results(args.out, {
        "rows": args.rows, "recipe": args.recipe, "ingest_rows_per_s_under_profiler": rate,
        "samples": samples, "share_of_main_thread": share,
    })  # fmt: skip


if __name__ == "__main__":
    main()
