"""Start-up cost: `nestvec --help` wall time and `import nestvec` (python -X importtime), per source tree.

Usage: python bench/startup.py [--srcs OLD/src,src] [--runs 10] [--out bench/results/startup.json]
Medians of `--runs` fresh interpreters each, the trees interleaved run by run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _help_s(env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "nestvec.cli.main", "--help"], env=env, capture_output=True, check=True)
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--srcs", default=str(ROOT / "src"))
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "startup.json")
    args = parser.parse_args()
    srcs = [str(Path(s).resolve()) for s in args.srcs.split(",")]
    samples: dict[str, dict[str, list[float]]] = {s: {"help_s": [], "import_ms": []} for s in srcs}
    for _ in range(args.runs):
        for src in srcs:
            env = {**os.environ, "PYTHONPATH": src}
            samples[src]["help_s"].append(_help_s(env))
            samples[src]["import_ms"].append(_import_ms(env))
    results = {
        src: {**{f"{k}_median": statistics.median(v) for k, v in got.items()}, "samples": got}
        for src, got in samples.items()
    }
    for src, row in results.items():
        print(f"{src}: nestvec --help {row['help_s_median']:.3f} s, import nestvec {row['import_ms_median']:.1f} ms")
    payload = {"command": "python bench/startup.py " + " ".join(sys.argv[1:]), "results": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=2) + "\n")
    print("saved", args.out)


if __name__ == "__main__":
    main()
