"""Start-up cost of the CLI: `nestvec --help`, and `nestvec search` on a collection of the demo
papers built with a static model (distilled from MiniLM here), per source tree.

Usage: python bench/startup.py [--srcs OLD/src,src] [--runs 10] [--out bench/results/startup.json]
Medians of `--runs` fresh interpreters each, the trees interleaved run by run; bytecode is written
and warmed first (PYTHONDONTWRITEBYTECODE unset), as an installed package has it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "nestvec.cli.main"]


def _wall_s(args: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run([*CLI, *args], env=env, capture_output=True, check=True)
    return time.perf_counter() - start


def _import_ms(env: dict[str, str]) -> float:
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import nestvec"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    line = next(line for line in done.stderr.splitlines() if line.rstrip().endswith("| nestvec"))
    return int(line.split("|")[1]) / 1000  # cumulative microseconds of the package


def _static_collection(folder: Path, env: dict[str, str]) -> Path:
    model, collection = folder / "static", folder / "papers"
    subprocess.run([*CLI, "distill", str(model), "--dims", "256"], env=env, capture_output=True, check=True)
    build = ["index", "build", str(ROOT / "examples" / "papers.jsonl"), str(collection), "--model", str(model)]
    subprocess.run([*CLI, *build], env=env, capture_output=True, check=True)
    return collection


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--srcs", default=str(ROOT / "src"))
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "startup.json")
    args = parser.parse_args()
    srcs = [str(Path(s).resolve()) for s in args.srcs.split(",")]
    base = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    envs = {src: {**base, "PYTHONPATH": src} for src in srcs}
    with tempfile.TemporaryDirectory(prefix="nestvec-startup-") as tmp:
        collection = _static_collection(Path(tmp), envs[srcs[-1]])
        commands = {"help_s": ["--help"], "search_static_s": ["search", str(collection), "graph neural networks"]}
        for env in envs.values():  # write and warm the bytecode
            for command in commands.values():
                _wall_s(command, env)
        samples = {src: {"import_ms": [], **{k: [] for k in commands}} for src in srcs}
        for _ in range(args.runs):
            for src in srcs:
                for key, command in commands.items():
                    samples[src][key].append(_wall_s(command, envs[src]))
                samples[src]["import_ms"].append(_import_ms(envs[src]))
    results = {
        src: {**{f"{k}_median": round(statistics.median(v), 4) for k, v in got.items()}, "samples": got}
        for src, got in samples.items()
    }
    for src, row in results.items():
        print(
            f"{src}: nestvec --help {row['help_s_median']:.3f} s, nestvec search (static model) "
            f"{row['search_static_s_median']:.3f} s, import nestvec {row['import_ms_median']:.1f} ms"
        )
    payload = {
        "command": "python bench/startup.py " + " ".join(sys.argv[1:]),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=2) + "\n")
    print("saved", args.out)


if __name__ == "__main__":
    main()
