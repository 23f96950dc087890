"""2D nesting on this machine: Matryoshka2dLoss, the Starbucks ladder, and separately fine-tuned
2- and 3-layer models, all from the bundled MiniLM with the same data (CoSENT on STS-B train),
steps, batch, learning rate and seed; STS-B dev picks each run's best checkpoint.

Every model is scored on STS-B test (Spearman ×100) at each (layers, dims) pair of the Starbucks
ladder it can run, through nestvec's own eval with the recipe `MODEL:layers=L:dims=D`, and the
cut models' speed is measured in the same run: sentences/s over STS-B test's sentences on ONNX
Runtime with 2 threads, full model and 3 layers alternating, the best of `--rounds` each.

Runs:
- `full`: CoSENT + MatryoshkaLoss over 384…32 (6 layers): the full model the others are held to;
- `matryoshka2d`: CoSENT in sentence-transformers' Matryoshka2dLoss over the same dims;
- `starbucks`: CoSENT in nestvec's StarbucksLoss over PAIRS (every pair every step, KL term);
- `layers-2`, `layers-3`: MiniLM cut to its first 2 or 3 layers, then as `full`.

Usage: python bench/train2d.py [--runs full,matryoshka2d,starbucks,layers-2,layers-3] [--epochs 1] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("NESTVEC_SHARED_DATA", ROOT.parent / "shared" / "data"))
STS = SHARED / "sts"
LADDER = (384, 256, 128, 64, 32)
PAIRS = ((1, 32), (2, 64), (3, 128), (4, 256), (6, 384))
RUNS: dict[str, dict[str, Any]] = {
    "full": {"layers": 6},
    "matryoshka2d": {"layers": 6, "two_d": True},
    "starbucks": {"layers": 6, "ladder": PAIRS},
    "layers-2": {"layers": 2},
    "layers-3": {"layers": 3},
}


def cut_minilm(layers: int, folder: Path) -> Path:
    from sentence_transformers import SentenceTransformer

    from nestvec.encoders import resolve_model

    model = SentenceTransformer(str(resolve_model("minilm")[1]), device="cpu")
    inner = model[0].auto_model
    inner.encoder.layer = inner.encoder.layer[:layers]
    inner.config.num_hidden_layers = layers
    out = folder / f"minilm-L{layers}"
    model.save(str(out))
    return out


def train(name: str, folder: Path, *, epochs: float, seed: int) -> tuple[Path, dict[str, Any]]:
    from nestvec.train.data import read_training
    from nestvec.train.finetune import FinetuneConfig, finetune

    options = RUNS[name]
    base: str | Path = "minilm" if options["layers"] == 6 else cut_minilm(options["layers"], folder)
    config = FinetuneConfig(
        loss="cosent", dims=LADDER, two_d=options.get("two_d", False), starbucks="ladder" in options,
        ladder=options.get("ladder", ()), epochs=epochs, batch_size=16, learning_rate=2e-5, seed=seed,
        dev=STS / "stsb-en-dev.csv", eval_steps=90, save_steps=90, progress=False,
    )  # fmt: skip
    report = finetune(base, folder / name, read_training(STS / "stsb-en-train.csv", "scored"), config=config)
    return folder / name, {"steps": report.steps, "train_seconds": round(report.seconds, 1), "dev": report.dev}


def score(model: Path, layers: int) -> dict[str, float]:
    from nestvec.eval.setting import Setting
    from nestvec.eval.tasks import evaluate_sts

    found: dict[str, float] = {}
    pairs = {p for p in PAIRS if p[0] <= layers} | {(layers, d) for d in LADDER}
    for cut, dims in sorted(pairs):
        text = str(model) + (f":layers={cut}" if cut < layers else "") + (f":dims={dims}" if dims < 384 else "")
        found[f"L{cut}_d{dims}"] = round(evaluate_sts(STS / "stsb-en-test.csv", Setting.parse(text)).main, 2)
    return found


def speed(model: Path, rounds: int) -> dict[str, float]:
    from nestvec.encoders import load_encoder
    from nestvec.eval.readers import read_sts

    pairs = read_sts(STS / "stsb-en-test.csv")
    texts = pairs.texts1 + pairs.texts2
    encoders = {layers: load_encoder(model, backend="onnx", threads=2, layers=layers) for layers in (None, 3)}
    best = {layers: 0.0 for layers in encoders}
    for _ in range(rounds):
        for layers, encoder in encoders.items():
            start = time.perf_counter()
            encoder.encode(texts, batch_size=64, progress=False)
            best[layers] = max(best[layers], len(texts) / (time.perf_counter() - start))
    return {
        "full_per_s": round(best[None], 1),
        "layers3_per_s": round(best[3], 1),
        "ratio": round(best[3] / best[None], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", default=",".join(RUNS))
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "train2d.json")
    args = parser.parse_args()
    results: dict[str, Any] = {
        "command": "python " + " ".join([str(Path(__file__).relative_to(ROOT)), *sys.argv[1:]]),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "pairs": [list(p) for p in PAIRS],
        "runs": {},
    }
    with tempfile.TemporaryDirectory(prefix="nestvec-train2d-") as tmp:
        for name in args.runs.split(","):
            start = time.perf_counter()
            model, run = train(name, Path(tmp), epochs=args.epochs, seed=args.seed)
            run["sts_test"] = score(model, RUNS[name]["layers"])
            if RUNS[name]["layers"] == 6:
                run["onnx_2_threads"] = speed(model, args.rounds)
            run["wall_seconds"] = round(time.perf_counter() - start, 1)
            results["runs"][name] = run
            print(name, json.dumps(run), flush=True)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
