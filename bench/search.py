"""Search at scale: nestvec's indexes against the raw faiss structures they wrap, same data, same run.

Data: MiniLM vectors of real texts (bench/realdata.py), mixed up to --n rows; 1,000 held-out
real queries. Truth: exact float top-10. Each index is built and measured in its own process so
its RAM is its own: RssAnon after loading the index minus before (file-backed pages such as
nestvec's memory-mapped rescoring vectors are reported apart, as RssFile growth). qps: all
queries in one batch, after --warm untimed queries (corpus rows) as a serving process has
answered, so the rescoring file's pages they touched are mapped; qps_cold: the same batch first
thing in a fresh process (each rescored row then costs a page fault). Latency: one query at a time.

Usage: python bench/search.py [--n 1000000] [--real 250000] [--threads 2] [--warm 5000] [--only NAME ...]
Writes bench/results/search.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
import realdata  # noqa: E402


def ivf(
    precision: str, rescore: int, nlist: int, nprobe: int, spill: int = 0, code_dims: int | None = None
) -> tuple[str, dict]:
    """A nestvec IVF row; its raw faiss pair (if any) takes the same nlist and nprobe."""
    knobs = {"rescore": rescore, "nlist": nlist, "nprobe": nprobe, "spill": spill, "code_dims": code_dims}
    return ("nestvec", {"strategy": "ivf", "precision": precision, **knobs})


# name -> (library, settings). Raw faiss rows use the same knobs as the nestvec row they pair with.
CONFIGS: dict[str, tuple[str, dict]] = {
    "faiss IndexFlatIP": ("faiss", {"kind": "flat"}),
    "nestvec flat float32": ("nestvec", {"strategy": "flat", "precision": "float32"}),
    "faiss IndexBinaryFlat": ("faiss", {"kind": "bflat"}),
    "nestvec flat binary (no rescoring)": ("nestvec", {"strategy": "flat", "precision": "binary", "rescore": 0}),
    "nestvec flat binary + rescoring x10": ("nestvec", {"strategy": "flat", "precision": "binary", "rescore": 10}),
    "nestvec flat binary + rescoring x30": ("nestvec", {"strategy": "flat", "precision": "binary", "rescore": 30}),
    "faiss IndexBinaryIVF": ("faiss", {"kind": "bivf", "nlist": 1024, "nprobe": 24}),
    "nestvec ivf binary (no rescoring)": ivf("binary", 0, 1024, 24),
    "nestvec ivf binary + rescoring x10": ivf("binary", 10, 1024, 24),
    "nestvec ivf binary + rescoring x30, nprobe 48": ivf("binary", 30, 1024, 48),
    "faiss IndexIVFRaBitQFastScan": ("faiss", {"kind": "rivf", "nlist": 2048, "nprobe": 160}),
    "nestvec ivf rabitq (no rescoring)": ivf("rabitq", 0, 2048, 160),
    "nestvec ivf rabitq + rescoring x10": ivf("rabitq", 10, 2048, 160),
    "nestvec ivf rabitq + rescoring x10, nprobe 128": ivf("rabitq", 10, 2048, 128),
    "nestvec ivf rabitq spill 15% + rescoring x10, nprobe 112": ivf("rabitq", 10, 2048, 112, spill=15),
    "nestvec ivf rabitq@256d spill 50% + rescoring x20, nprobe 48": ivf("rabitq", 20, 2048, 48, 50, 256),
    "nestvec ivf rabitq@192d spill 70% + rescoring x20, nprobe 48": ivf("rabitq", 20, 2048, 48, 70, 192),
    "nestvec ivf rabitq + rescoring x10, 4096 lists, nprobe 192": ivf("rabitq", 10, 4096, 192),
    "faiss IndexHNSWFlat": ("faiss", {"kind": "hnsw", "m": 32, "ef_search": 64}),
    "nestvec hnsw float32": ("nestvec", {"strategy": "hnsw", "precision": "float32", "hnsw_m": 32, "ef_search": 64}),
    "nestvec hnsw int8 + rescoring x4": ("nestvec", {"strategy": "hnsw", "precision": "int8", "ef_search": 64}),
}
PAIRS = {
    "nestvec flat float32": "faiss IndexFlatIP",
    "nestvec flat binary (no rescoring)": "faiss IndexBinaryFlat",
    "nestvec ivf binary (no rescoring)": "faiss IndexBinaryIVF",
    "nestvec ivf rabitq (no rescoring)": "faiss IndexIVFRaBitQFastScan",
    "nestvec hnsw float32": "faiss IndexHNSWFlat",
}

CHILD = r"""
import gc, json, sys, time
from pathlib import Path
import numpy as np
import faiss
mode, library, settings, data, queries_file, threads, folder, warm = sys.argv[1:9]
settings, threads, folder, warm = json.loads(settings), int(threads), Path(folder), int(warm)
faiss.omp_set_num_threads(threads)
X = np.load(data, mmap_mode="r")
CHUNK = 50_000
def mem():
    fields = dict(line.split(":", 1) for line in open("/proc/self/status"))
    return int(fields["RssAnon"].split()[0]) * 1024, int(fields["RssFile"].split()[0]) * 1024
binary = settings.get("kind", "").startswith("b") or settings.get("precision") == "binary"
codes = lambda v: np.packbits(v > 0, axis=1) if binary else np.ascontiguousarray(v, dtype=np.float32)
if library == "nestvec":
    from nestvec.index import checkpoint
    from nestvec.index.spec import IndexSpec
    from nestvec.index.vector_index import VectorIndex
    knobs = dict(settings)
    spec = IndexSpec.make(knobs.pop("strategy"), knobs.pop("precision"), **knobs)
if mode == "build":
    start = time.perf_counter()
    if library == "faiss":
        kind, d = settings["kind"], X.shape[1]
        if kind == "flat": index = faiss.IndexFlatIP(d)
        elif kind == "bflat": index = faiss.IndexBinaryFlat(d)
        elif kind == "hnsw":
            index = faiss.IndexHNSWFlat(d, settings["m"], faiss.METRIC_INNER_PRODUCT); index.hnsw.efConstruction = 80
        elif kind == "rivf":
            index = faiss.IndexIVFRaBitQFastScan(faiss.IndexFlatIP(d), d, settings["nlist"], faiss.METRIC_INNER_PRODUCT)
            index.qb = 8
            index.train(codes(X[:200_000]))
        else:
            index = faiss.IndexBinaryIVF(faiss.IndexBinaryFlat(d), d, settings["nlist"])
            index.train(codes(X[:200_000]))  # the rows nestvec trains on (the file is shuffled)
        for lo in range(0, len(X), CHUNK):
            index.add(codes(X[lo:lo + CHUNK]))
        build = time.perf_counter() - start
        (faiss.write_index_binary if binary else faiss.write_index)(index, str(folder / "raw.faiss"))
    else:
        index = VectorIndex(spec, X.shape[1])
        labels = np.arange(len(X), dtype=np.int64)
        first = min(len(X), 200_000) if spec.train_at() else 0  # enough rows to train the codes at once
        if first:
            index.add(labels[:first], X[:first])
        for lo in range(first, len(X), CHUNK):
            index.add(labels[lo:lo + CHUNK], X[lo:lo + CHUNK])
        build = time.perf_counter() - start
        checkpoint.save(index, folder, generation="bench")
    print(json.dumps({"build_s": build}))
    sys.exit()
Q = np.load(queries_file)
before = mem()
if library == "faiss":
    index = (faiss.read_index_binary if binary else faiss.read_index)(str(folder / "raw.faiss"))
    if "ef_search" in settings: index.hnsw.efSearch = settings["ef_search"]
    if "nprobe" in settings: index.nprobe = settings["nprobe"]
    def search(q, k):
        return index.search(codes(q), k)[1]
else:
    index, _ = checkpoint.load(folder, spec, X.shape[1])
    def search(q, k):
        return np.stack([r.labels for r in index.search(q, k)])
gc.collect()
after = mem()
search(Q[:20], 10)
# Warm-up on other queries (corpus rows): a serving process has mapped the rescoring file's
# pages its earlier queries touched; the timed queries' own rows are not pre-touched.
warm_rows = np.sort(np.random.default_rng(7).choice(len(X), warm, replace=False))
for lo in range(0, warm, 1000):
    search(np.ascontiguousarray(X[warm_rows[lo:lo + 1000]]), 10)
t = time.perf_counter(); found = search(Q, 10); batch = time.perf_counter() - t
if mode == "cold":
    print(json.dumps({"qps_cold": len(Q) / batch})); sys.exit()
lat = []
for q in Q[:200]:
    t = time.perf_counter(); search(q[None, :], 10); lat.append(time.perf_counter() - t)
print(json.dumps({
    "ram_bytes": after[0] - before[0], "rss_file_growth_bytes": mem()[1] - after[1],
    "qps": len(Q) / batch,
    "p50_ms": 1000 * float(np.percentile(lat, 50)),
    "p99_ms": 1000 * float(np.percentile(lat, 99)),
    "found": found.tolist(),
}))
"""


def dataset(n: int, real: int) -> tuple[Path, Path]:
    corpus, _ = realdata.embed(real)
    data = realdata.CACHE / f"mixed-{real}-{n}-shuffled.npy"
    if not data.exists():  # shuffled, so the first rows (where codes train) are a random sample
        mixed = realdata.augment(corpus, n)
        np.save(data, mixed[np.random.default_rng(1).permutation(len(mixed))])
    query_file = realdata.CACHE / f"real-{real}-queries.npy"
    return data, query_file


def truth(data: Path, queries: Path, threads: int) -> np.ndarray:
    import faiss

    cache = data.with_suffix(".truth.npy")
    if cache.exists():
        return np.load(cache)
    faiss.omp_set_num_threads(threads)
    x = np.load(data, mmap_mode="r")
    index = faiss.IndexFlatIP(x.shape[1])
    for lo in range(0, len(x), 100_000):
        index.add(np.ascontiguousarray(x[lo : lo + 100_000]))
    found = index.search(np.load(queries), 10)[1]
    np.save(cache, found)
    return found


def child(mode: str, name: str, data: Path, queries: Path, threads: int, folder: str, warm: int = 0) -> dict:
    library, settings = CONFIGS[name]
    args = [mode, library, json.dumps(settings), str(data), str(queries), str(threads), folder, str(warm)]
    done = subprocess.run([sys.executable, "-c", CHILD, *args], capture_output=True, text=True, cwd=ROOT)
    if done.returncode:
        raise SystemExit(f"{name} failed:\n{done.stderr[-3000:]}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def save_results(out: Path, fields: dict[str, Any]) -> None:
    """`fields` as a results JSON under the command that ran, the machine and the date."""
    import time

    head = {"command": f"python bench/{Path(sys.argv[0]).name} " + " ".join(sys.argv[1:])}
    machine = platform.processor() or platform.machine()
    tail = {"machine": machine, "cpu_flags": cpu_flags(), "tree": tree(), "date": time.strftime("%Y-%m-%d")}
    out.write_text(json.dumps({**head, **fields, **tail}, indent=2) + "\n")
    print("saved", out)


def cpu_flags() -> list[str]:
    """The vector extensions that decide these speeds (they differ between machines of one kind)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    flags = next((line.split(":", 1)[1].split() for line in text.splitlines() if line.startswith("flags")), [])
    return sorted(f for f in flags if f.startswith(("avx", "amx", "fma", "f16c", "sse4")))


def tree() -> str:
    """The commit measured, with a mark when the working tree's sources differ from it."""

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], capture_output=True, text=True, cwd=ROOT).stdout.strip()

    return git("rev-parse", "--short", "HEAD") + ("+changes" if git("status", "--porcelain", "--", "src") else "")


def recall_at_10(found: Any, exact: np.ndarray) -> float:
    """Mean share of each query's exact top 10 that `found` (its ten ids per query) holds."""
    return float(np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, exact, strict=True)]))


def run(name: str, data: Path, queries: Path, threads: int, exact: np.ndarray, warm: int) -> dict:
    """Build (and save) in one process, load and search in a fresh one, so RAM is the index's alone.

    qps follows `warm` untimed queries; qps_cold is the first batch of another fresh process."""
    with tempfile.TemporaryDirectory(prefix="nestvec-bench-") as folder:
        out = child("build", name, data, queries, threads, folder)
        out.update(child("cold", name, data, queries, threads, folder))
        out.update(child("search", name, data, queries, threads, folder, warm))
    found = np.asarray(out.pop("found"))
    out["recall_at_10"] = recall_at_10(found, exact)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--real", type=int, default=250_000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--only", nargs="*", default=None)
    parser.add_argument("--warm", type=int, default=5000, help="untimed corpus-row queries before timing")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "search.json")
    args = parser.parse_args()
    data, queries = dataset(args.n, args.real)
    exact = truth(data, queries, args.threads)
    results = {}
    for name in args.only or CONFIGS:
        results[name] = run(name, data, queries, args.threads, exact, args.warm)
        r = results[name]
        print(
            f"{name:40s} recall@10 {r['recall_at_10']:.3f}  {r['qps']:8.0f} q/s (cold {r['qps_cold']:.0f})  "
            f"p50 {r['p50_ms']:.2f} ms  "
            f"p99 {r['p99_ms']:.2f} ms  RAM {r['ram_bytes'] / 2**20:7.1f} MiB  build {r['build_s']:.0f} s",
            flush=True,
        )
    summary = {}
    for ours, raw in PAIRS.items():
        if ours in results and raw in results:
            summary[f"{ours} / {raw} qps"] = results[ours]["qps"] / results[raw]["qps"]
    flat = results.get("nestvec flat float32")
    for name, r in results.items():
        if flat and name.startswith("nestvec") and name != "nestvec flat float32":
            summary[f"{name}: qps vs nestvec flat float32"] = r["qps"] / flat["qps"]
            summary[f"{name}: cold qps vs nestvec flat float32 cold"] = r["qps_cold"] / flat["qps_cold"]
            summary[f"{name}: one-query-at-a-time qps (1/p50) vs nestvec flat float32"] = flat["p50_ms"] / r["p50_ms"]
            summary[f"{name}: RAM vs nestvec flat float32"] = r["ram_bytes"] / flat["ram_bytes"]
    for key, value in summary.items():
        print(f"{key}: {value:.3f}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "command": " ".join(sys.argv),
                "machine": platform.processor() or platform.machine(),
                "n": args.n,
                "real_texts": args.real,
                "queries": 1000,
                "threads": args.threads,
                "warm_queries": args.warm,
                "results": results,
                "summary": summary,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
