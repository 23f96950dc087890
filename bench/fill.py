"""The batch fill floor (MIN_FILL in encoders/transformer/tokenize.py): CPU time per sentence when
a handful of unrelated sentences is encoded at once, as a server's micro-batch is.

Random groups of STS-B test sentences (seeded) are encoded one `encode` call per group, with the
floor at each value in FILLS (0: one batch padded to its longest) and with one text per batch;
then the whole STS-B test set (sorted by length inside `encode`) with the floor at 0 and at the
default, to show that sorted inputs are unaffected. ms of process CPU and of wall time per
sentence; each setting alternates over ROUNDS, best round kept.

Usage: python bench/fill.py [--out bench/results/fill.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
import search  # noqa: E402

FILLS = (0.0, 0.5, 0.7, 0.85)
ROUNDS = 2


def timed(encode: Callable[[list[str]], object], groups: list[list[str]]) -> dict[str, float]:
    count = sum(len(g) for g in groups)
    cpu, wall = time.process_time(), time.perf_counter()
    for group in groups:
        encode(group)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return {"cpu_ms": cpu / count * 1000, "wall_ms": wall / count * 1000}


def best(rows: list[dict[str, float]]) -> dict[str, float]:
    return min(rows, key=lambda r: r["wall_ms"])


def main() -> None:
    import nestvec
    import serve
    from nestvec.encoders.transformer import tokenize

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "fill.json")
    args = parser.parse_args()
    default = tokenize.MIN_FILL
    sentences = serve.sentences()
    rng = random.Random(0)
    results: dict[str, object] = {}
    for backend, threads in (("onnx", None), ("torch", None), ("onnx", 1)):
        encoder = nestvec.load_encoder("minilm", backend=backend, threads=threads)
        encoder.encode(sentences[:200])
        for size in (8, 32):
            groups = [rng.sample(sentences, size) for _ in range(2400 // size)]
            label = f"{backend}, {threads or 'default'} threads, groups of {size}"
            runs: dict[str, list[dict[str, float]]] = {}
            for _ in range(ROUNDS):
                for fill in FILLS:
                    tokenize.MIN_FILL = fill
                    runs.setdefault(f"fill {fill}", []).append(timed(encoder.encode, groups))
                tokenize.MIN_FILL = default
                runs.setdefault("one text per batch", []).append(timed(partial(encoder.encode, batch_size=1), groups))
            results[label] = {name: best(rows) for name, rows in runs.items()}
            print(label, json.dumps(results[label]), flush=True)
    encoder = nestvec.load_encoder("minilm", backend="onnx")
    sorted_rows: dict[str, list[float]] = {}
    for _ in range(ROUNDS):
        for fill in (0.0, default):
            tokenize.MIN_FILL = fill
            start = time.perf_counter()
            encoder.encode(sentences)
            sorted_rows.setdefault(f"fill {fill}", []).append(len(sentences) / (time.perf_counter() - start))
    batches = {}
    for fill in (0.0, default):
        tokenize.MIN_FILL = fill
        batches[f"fill {fill}"] = sum(1 for _ in encoder.tokenizer.batches(sentences, 32, max_batch_tokens=1024))
    tokenize.MIN_FILL = default
    results["sorted STS-B test, onnx"] = {"texts_per_s_best": {k: max(v) for k, v in sorted_rows.items()},
                                          "batches": batches}  # fmt: skip
    print(json.dumps(results["sorted STS-B test, onnx"]))
    results["setup"] = {
        "machine": platform.machine(), "sentences": len(sentences), "rounds": ROUNDS, "default_fill": default,
        "cpu_flags": search.cpu_flags(),
        "command": "python bench/fill.py",
    }  # fmt: skip
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    print("saved", args.out)


if __name__ == "__main__":
    main()
