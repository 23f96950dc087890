"""Ray Data against single-process nestvec, on a real two-node Ray cluster on loopback.

A head and one worker node are started as separate processes (`ray start --head`, then
`ray start --address=…`, each with `--num-cpus 1` so the cluster has this machine's 2 CPUs
over two nodes). The texts: msmarco-5k's corpus, the demo papers and `--glosses` WordNet /
GCIDE definitions (bench/gloss_data.py), written as three JSONL files. Single-process nestvec
embeds them with MiniLM (2 threads); `embed_shards(..., ScaleOptions(ray=ADDRESS))` embeds them
on the cluster (one actor per node, 1 thread each). Reported: texts/s each way, the ratio, and
that the ids are the same and the vectors within 1e-6. Then a rerun of the finished job counts
the shards it skips. Then the same with a static model distilled from MiniLM (`distill`, 256 dims)
over `--static-texts` records (the gloss texts cycled, each copy its own id).

Usage: python bench/scale.py [--glosses 20000] [--shard-rows 2000] [--static-texts 1000000] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
SHARED = Path(os.environ.get("NESTVEC_SHARED_DATA", ROOT.parent / "shared" / "data"))
RAY = str(Path(sys.executable).with_name("ray"))


def write_inputs(folder: Path, glosses: int) -> list[Path]:
    from gloss_data import write_sets

    folder.mkdir(parents=True)
    corpus = [json.loads(line) for line in (SHARED / "retrieval" / "msmarco-5k" / "corpus.jsonl").open()]
    (folder / "msmarco.jsonl").write_text(
        "".join(json.dumps({"id": "m" + r["_id"], "text": r["text"]}) + "\n" for r in corpus)
    )
    papers = [json.loads(line) for line in (ROOT / "examples" / "papers.jsonl").open()]
    (folder / "papers.jsonl").write_text(
        "".join(json.dumps({"id": "p" + p["id"], "text": p["text"]}) + "\n" for p in papers)
    )
    texts = write_sets(folder / "gloss", seed=0)["train"].read_text(encoding="utf-8").splitlines()[:glosses]
    (folder / "glosses.jsonl").write_text(
        "".join(json.dumps({"id": f"g{i}", "text": t}) + "\n" for i, t in enumerate(texts))
    )
    shutil.rmtree(folder / "gloss")
    return [folder / n for n in ("msmarco.jsonl", "papers.jsonl", "glosses.jsonl")]


def single(files: list[Path], model: str = "minilm") -> tuple[dict[str, np.ndarray], float]:
    from nestvec.encoders import load_encoder
    from nestvec.io.readers import RecordReader

    records = [r for f in files for r in RecordReader(f)]
    encoder = load_encoder(model, threads=2)
    start = time.perf_counter()
    vectors = encoder.encode([r.text for r in records], batch_size=64, progress=False)
    return {r.id: v for r, v in zip(records, vectors, strict=True)}, time.perf_counter() - start


def write_static_inputs(folder: Path, count: int) -> list[Path]:
    from gloss_data import write_sets

    texts = write_sets(folder / "gloss", seed=0)["train"].read_text(encoding="utf-8").splitlines()
    with (folder / "static.jsonl").open("w") as fh:
        for i in range(count):
            fh.write(json.dumps({"id": f"s{i}", "text": texts[i % len(texts)]}) + "\n")
    shutil.rmtree(folder / "gloss")
    return [folder / "static.jsonl"]


def compare(model: str, files: list[Path], folder: Path, options: object) -> dict[str, object]:
    """Single-process nestvec, then the Ray job, over the same files; ids and vectors compared."""
    import pyarrow.parquet as pq

    from nestvec.recipe import Recipe
    from nestvec.scale import embed_shards
    from nestvec.scale.plan import ReadOptions

    expected, seconds = single(files, model)
    report = embed_shards(files, folder, recipe=Recipe.make(model=model), read=ReadOptions(), options=options)  # type: ignore[arg-type]
    table = pq.read_table(folder, columns=["id", "embedding"])
    matrix = np.asarray(table.column("embedding").combine_chunks().flatten()).reshape(table.num_rows, -1)
    ids = table.column("id").to_pylist()
    got = dict(zip(ids, matrix, strict=True))
    result = {
        "texts": len(expected),
        "single_process": {"seconds": round(seconds, 1), "per_s": round(len(expected) / seconds, 1)},
        "ray": {"nodes": 2, "actors": report.actors, "shards": report.shards, "seconds": report.seconds,
                "per_s": round(len(ids) / report.seconds, 1)},
        "ratio_to_single_process": round(seconds / report.seconds, 3),
        "same_ids_each_once": len(ids) == len(set(ids)) and set(ids) == set(expected),
        "max_abs_diff": float(max(np.abs(got[i] - v).max() for i, v in expected.items())),
    }  # fmt: skip
    again = embed_shards(files, folder, recipe=Recipe.make(model=model), read=ReadOptions(), options=options)  # type: ignore[arg-type]
    result["rerun"] = {"skipped": again.skipped, "of": again.shards, "seconds": again.seconds}
    return result


def cluster(port: int, tmp: Path) -> None:
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    head = [
        RAY,
        "start",
        "--head",
        "--node-ip-address=127.0.0.1",
        f"--port={port}",
        "--num-cpus=1",
        "--include-dashboard=false",
        f"--temp-dir={tmp}",
    ]
    subprocess.run(head, check=True, env=env, capture_output=True)
    worker = [RAY, "start", f"--address=127.0.0.1:{port}", "--node-ip-address=127.0.0.1", "--num-cpus=1"]
    subprocess.run(worker, check=True, env=env, capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--glosses", type=int, default=20_000)
    parser.add_argument("--shard-rows", type=int, default=2_000)
    parser.add_argument("--static-texts", type=int, default=1_000_000)
    parser.add_argument("--port", type=int, default=6389)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "scale.json")
    args = parser.parse_args()
    from nestvec.scale import ScaleOptions
    from nestvec.train import distill

    results: dict[str, object] = {
        "command": "python " + " ".join([str(Path(__file__).relative_to(ROOT)), *sys.argv[1:]]),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "note": "the ratio is Ray throughput over single-process throughput (2 threads), same texts, same run",
    }
    with tempfile.TemporaryDirectory(prefix="nestvec-scale-") as tmp:
        files = write_inputs(Path(tmp) / "in", args.glosses)
        static = str(distill("minilm", Path(tmp) / "minilm-static", dims=256).path)
        static_files = write_static_inputs(Path(tmp) / "in", args.static_texts)
        cluster(args.port, Path("/tmp/nestvec-ray"))
        try:
            options = ScaleOptions(ray=f"127.0.0.1:{args.port}", threads=1, rows=args.shard_rows, progress=False)
            results["minilm"] = compare("minilm", files, Path(tmp) / "shards", options)
            print(json.dumps(results["minilm"]), flush=True)
            big = ScaleOptions(ray=options.ray, threads=1, rows=50_000, progress=False)
            results["static"] = compare(static, static_files, Path(tmp) / "static-shards", big)
        finally:
            subprocess.run([RAY, "stop", "--force"], capture_output=True)
    print(json.dumps(results, indent=1))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
