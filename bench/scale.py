"""Ray Data against single-process nestvec, on a real two-node Ray cluster on loopback.

A head and one worker node are started as separate processes (`ray start --head`, then
`ray start --address=…`, each with `--num-cpus 1` so the cluster has this machine's 2 CPUs
over two nodes). The texts: msmarco-5k's corpus, the demo papers and `--glosses` WordNet /
GCIDE definitions (bench/gloss_data.py), written as three JSONL files. Single-process nestvec
embeds them with MiniLM (2 threads); `embed_shards(..., ScaleOptions(ray=ADDRESS))` embeds them
on the cluster (one actor per node, 1 thread each). Single-process is timed two ways: the
`nestvec embed` job (model load, reading, batching, writing Parquet; what a user would run
instead) and the encoder kernel alone over preloaded texts. Reported: texts/s each way, the
ratios, and that the ids are the same and the vectors within 1e-6. Then a rerun of the finished
job counts the shards it skips. Faults, through the CLI (`nestvec embed --ray ADDRESS`): one
ShardEmbedder actor SIGKILLed after 3 shards (the job must finish with every id once), then the
driver SIGKILLed after 8 shards and the command run again (skipped shards counted, the result
compared). Then the same with a static model distilled from MiniLM (`distill`, 256 dims)
over `--static-texts` records (the gloss texts cycled, each copy its own id).

Usage: python bench/scale.py [--glosses 20000] [--shard-rows 2000] [--static-texts 1000000] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))  # tests.ray_faults: the same fault helpers as tests/test_scale.py
from tests.ray_faults import finished, kill_an_actor  # noqa: E402

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
    """The encoder alone over every text at once (texts read beforehand, model loaded): the kernel."""
    from nestvec.encoders import load_encoder
    from nestvec.io.readers import RecordReader

    records = [r for f in files for r in RecordReader(f)]
    encoder = load_encoder(model, threads=2)
    start = time.perf_counter()
    vectors = encoder.encode([r.text for r in records], batch_size=64, progress=False)
    return {r.id: v for r, v in zip(records, vectors, strict=True)}, time.perf_counter() - start


def single_job(files: list[Path], folder: Path, model: str = "minilm") -> float:
    """Single-process `nestvec embed FILE OUT.parquet` over each file, model load included: the
    job a user would otherwise run (its reading, batching and writing as the Ray job has them)."""
    from nestvec.encoders import load_encoder
    from nestvec.io.ingest import embed_file
    from nestvec.io.readers import RecordReader

    folder.mkdir(parents=True)
    start = time.perf_counter()
    encoder = load_encoder(model, threads=2)
    for f in files:
        embed_file(RecordReader(f), folder / f"{f.stem}.parquet", encoder=encoder, progress=False)
    seconds = time.perf_counter() - start
    shutil.rmtree(folder)
    return seconds


def write_static_inputs(folder: Path, count: int) -> list[Path]:
    from gloss_data import write_sets

    folder.mkdir(parents=True)
    texts = write_sets(folder / "gloss", seed=0)["train"].read_text(encoding="utf-8").splitlines()
    with (folder / "static.jsonl").open("w") as fh:
        for i in range(count):
            fh.write(json.dumps({"id": f"s{i}", "text": texts[i % len(texts)]}) + "\n")
    shutil.rmtree(folder / "gloss")
    return [folder / "static.jsonl"]


def read_shards(folder: Path) -> dict[str, np.ndarray]:
    import pyarrow.parquet as pq

    table = pq.read_table(folder, columns=["id", "embedding"])
    matrix = np.asarray(table.column("embedding").combine_chunks().flatten()).reshape(table.num_rows, -1)
    ids = table.column("id").to_pylist()
    if len(ids) != len(set(ids)):
        raise SystemExit(f"{folder}: {len(ids) - len(set(ids))} ids written twice")
    return dict(zip(ids, matrix, strict=True))


def same(got: dict[str, np.ndarray], expected: dict[str, np.ndarray]) -> dict[str, object]:
    return {
        "same_ids_each_once": set(got) == set(expected),
        "max_abs_diff": float(max(np.abs(got[i] - v).max() for i, v in expected.items())),
    }


def compare(model: str, files: list[Path], folder: Path, options: object) -> tuple[dict[str, object], dict]:
    """Single-process nestvec, then the Ray job, over the same files; ids and vectors compared."""
    from nestvec.recipe import Recipe
    from nestvec.scale import embed_shards
    from nestvec.scale.plan import ReadOptions

    expected, seconds = single(files, model)
    job_seconds = single_job(files, folder.with_name(folder.name + "-single"), model)
    report = embed_shards(files, folder, recipe=Recipe.make(model=model), read=ReadOptions(), options=options)  # type: ignore[arg-type]
    got = read_shards(folder)
    result = {
        "texts": len(expected),
        "single_process_encode": {"seconds": round(seconds, 1), "per_s": round(len(expected) / seconds, 1)},
        "single_process_embed_job": {"seconds": round(job_seconds, 1), "per_s": round(len(expected) / job_seconds, 1)},
        "ray": {"nodes": 2, "actors": report.actors, "shards": report.shards, "seconds": report.seconds,
                "per_s": round(len(got) / report.seconds, 1)},
        "ratio_to_single_process_embed_job": round(job_seconds / report.seconds, 3),
        "ratio_to_single_process_encode": round(seconds / report.seconds, 3),
        **same(got, expected),
    }  # fmt: skip
    again = embed_shards(files, folder, recipe=Recipe.make(model=model), read=ReadOptions(), options=options)  # type: ignore[arg-type]
    result["rerun"] = {"skipped": again.skipped, "of": again.shards, "seconds": again.seconds}
    return result, expected


def embed_command(files: list[Path], folder: Path, address: str, rows: int) -> list[str]:
    nestvec = str(Path(sys.executable).with_name("nestvec"))
    inputs = str(files[0].parent)
    return [
        nestvec,
        "embed",
        inputs,
        str(folder),
        "--ray",
        address,
        "--shard-rows",
        str(rows),
        "--no-progress",
        "--json",
    ]


def parse(out: str, err: str) -> dict[str, object]:
    try:
        return dict(json.loads(out))
    except json.JSONDecodeError:
        raise SystemExit(f"not JSON on stdout: {out[-1500:]!r}; stderr: {err[-1500:]!r}") from None


def faults(files: list[Path], folder: Path, address: str, expected: dict[str, np.ndarray]) -> dict[str, object]:
    """SIGKILL an actor mid-run (the job must finish, every id once), then SIGKILL the driver
    mid-run and run it again (finished shards skipped, the result the same)."""
    command = embed_command(files, folder / "actor", address, rows=1_000)
    folder.mkdir(parents=True)
    with (folder / "out.json").open("w+") as out, (folder / "err.txt").open("w+") as err:  # files: no pipe fills up
        job = subprocess.Popen(command, stdout=out, stderr=err, text=True)
        while finished(folder / "actor") < 3 and job.poll() is None:
            time.sleep(0.2)
        killed = kill_an_actor()
        job.wait(timeout=1_800)
        out.seek(0), err.seek(0)
        report = parse(out.read(), err.read()) if not job.returncode else parse("", err.read())
    actor = {"killed_pid": killed, "after_shards": 3, "report": report}
    actor |= same(read_shards(folder / "actor"), expected)
    command = embed_command(files, folder / "driver", address, rows=1_000)
    driver = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while finished(folder / "driver") < 8 and driver.poll() is None:
        time.sleep(0.2)
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    before = finished(folder / "driver")
    time.sleep(5)  # the killed driver's job is torn down by the cluster
    rerun = subprocess.run(command, capture_output=True, text=True, timeout=1_800)
    if rerun.returncode:
        raise SystemExit(f"the rerun after a killed driver failed: {rerun.stderr[-2000:]}")
    report = parse(rerun.stdout, rerun.stderr)
    driver_result = {"finished_before_kill": before, "skipped_on_rerun": report["skipped"], "shards": report["shards"],
                     "report": report, **same(read_shards(folder / "driver"), expected)}  # fmt: skip
    return {"killed_actor": actor, "killed_driver": driver_result}


def cluster(port: int, tmp: Path) -> None:
    # Ray 2.59+ turns token authentication on for clusters started by hand; every node and the
    # driver (this process, and the CLI jobs it starts) share one token through the environment
    os.environ.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(32), RAY_USAGE_STATS_ENABLED="0")
    env = dict(os.environ)
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
        "note": "ratios: single-process seconds over Ray seconds, same texts, same run; the embed job is "
        "`nestvec embed` per file (model load, reading, writing Parquet), the encode kernel is "
        "encoder.encode over preloaded texts",
    }
    with tempfile.TemporaryDirectory(prefix="nestvec-scale-") as tmp:
        files = write_inputs(Path(tmp) / "in", args.glosses)
        static = str(distill("minilm", Path(tmp) / "minilm-static", dims=256).path)
        static_files = write_static_inputs(Path(tmp) / "static-in", args.static_texts)
        cluster(args.port, Path("/tmp/nestvec-ray"))
        try:
            options = ScaleOptions(ray=f"127.0.0.1:{args.port}", threads=1, rows=args.shard_rows, progress=False)
            results["minilm"], expected = compare("minilm", files, Path(tmp) / "shards", options)
            print(json.dumps(results["minilm"]), flush=True)
            results["faults"] = faults(files, Path(tmp) / "faults", options.ray, expected)
            print(json.dumps(results["faults"]), flush=True)
            big = ScaleOptions(ray=options.ray, threads=1, rows=50_000, progress=False)
            results["static"], _ = compare(static, static_files, Path(tmp) / "static-shards", big)
        finally:
            subprocess.run([RAY, "stop", "--force"], capture_output=True)
    print(json.dumps(results, indent=1))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
