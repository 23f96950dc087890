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
- `layers-2`, `layers-3`: MiniLM cut to its first 2 or 3 layers, then as `full`;
- `distilled-3`: MiniLM cut to 3 layers, taught `full`'s vectors (the mse loss) over unlabeled
  text (STS-B train's sentences and WordNet/GCIDE definitions, bench/gloss_data.py's train split),
  then as `layers-3`; STS-B dev picks between the taught model and the one fine-tuned after it.
  Extra data and steps, reported as such: the teacher (`full`) is trained first when not in the run.

Usage: python bench/train2d.py [--runs full,matryoshka2d,starbucks,layers-2,layers-3,distilled-3] [--epochs 1]
       [--distil-texts 60000] [--distil-epochs 2] [--merge] [--out FILE]
(--merge keeps the runs already in FILE that this one does not repeat.)
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
sys.path.insert(0, str(ROOT / "bench"))
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
    "distilled-3": {"layers": 3, "distil": True},
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


def train(
    name: str, folder: Path, *, epochs: float, seed: int, base: str | Path | None = None
) -> tuple[Path, dict[str, Any]]:
    from nestvec.train.data import read_training
    from nestvec.train.finetune import FinetuneConfig, finetune

    options = RUNS[name]
    if base is None:
        base = "minilm" if options["layers"] == 6 else cut_minilm(options["layers"], folder)
    config = FinetuneConfig(
        loss="cosent", dims=LADDER, two_d=options.get("two_d", False), starbucks="ladder" in options,
        ladder=options.get("ladder", ()), epochs=epochs, batch_size=16, learning_rate=2e-5, seed=seed,
        dev=STS / "stsb-en-dev.csv", eval_steps=90, save_steps=90, progress=False,
    )  # fmt: skip
    report = finetune(base, folder / name, read_training(STS / "stsb-en-train.csv", "scored"), config=config)
    return folder / name, {"steps": report.steps, "train_seconds": round(report.seconds, 1), "dev": report.dev}


def distil(folder: Path, *, texts: int, epochs: float, seed: int) -> tuple[Path, dict[str, Any]]:
    """Teach a 3-layer cut of MiniLM `full`'s vectors, then fine-tune it as `layers-3`; keep the better on dev."""
    from gloss_data import write_sets
    from nestvec.eval.readers import read_sts
    from nestvec.eval.setting import Setting
    from nestvec.eval.tasks import evaluate_sts
    from nestvec.train.data import read_training
    from nestvec.train.finetune import FinetuneConfig, finetune

    teacher = folder / "full"
    run: dict[str, Any] = {}
    if not teacher.exists():
        run["teacher_train_seconds"] = train("full", folder, epochs=1.0, seed=seed)[1]["train_seconds"]
    sts = read_sts(STS / "stsb-en-train.csv")
    glosses = write_sets(folder / "gloss", seed=seed)["train"].read_text(encoding="utf-8").splitlines()
    unlabeled = list(dict.fromkeys(sts.texts1 + sts.texts2 + glosses))[:texts]
    (folder / "unlabeled.txt").write_text("".join(t + "\n" for t in unlabeled), encoding="utf-8")
    config = FinetuneConfig(
        loss="mse", teacher=str(teacher), epochs=epochs, batch_size=64, learning_rate=1e-4, seed=seed,
        save_steps=500, progress=False,
    )  # fmt: skip
    start = time.perf_counter()
    report = finetune(
        cut_minilm(3, folder), folder / "taught", read_training(folder / "unlabeled.txt", "text"), config=config
    )
    run["taught"] = {"texts": len(unlabeled), "steps": report.steps, "seconds": round(time.perf_counter() - start, 1)}
    run["tuned"] = train("layers-3", folder, epochs=1.0, seed=seed, base=folder / "taught")[1]
    dev = {
        m: evaluate_sts(STS / "stsb-en-dev.csv", Setting.parse(f"{folder / m}:dims=128")).main
        for m in ("taught", "layers-3")
    }
    run["dev_at_128"] = {m: round(v, 2) for m, v in dev.items()}
    run["chosen"] = max(dev, key=dev.__getitem__)
    return folder / run["chosen"], run


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
    """The model with all its layers against its first 3 (`layers=3`)."""
    from nestvec.encoders import load_encoder

    return speed_pair(
        load_encoder(model, backend="onnx", threads=2), load_encoder(model, backend="onnx", threads=2, layers=3), rounds
    )


def speed_pair(full: Any, small: Any, rounds: int) -> dict[str, float]:
    """Sentences/s of two encoders (or model folders, loaded on ONNX Runtime with 2 threads) over
    STS-B test's sentences, alternating, the best of `rounds` each."""
    from nestvec.encoders import load_encoder
    from nestvec.eval.readers import read_sts

    pairs = read_sts(STS / "stsb-en-test.csv")
    texts = pairs.texts1 + pairs.texts2
    encoders = {
        name: load_encoder(m, backend="onnx", threads=2) if isinstance(m, Path) else m
        for name, m in (("full", full), ("small", small))
    }
    best = dict.fromkeys(encoders, 0.0)
    for _ in range(rounds):
        for name, encoder in encoders.items():
            start = time.perf_counter()
            encoder.encode(texts, batch_size=64, progress=False)
            best[name] = max(best[name], len(texts) / (time.perf_counter() - start))
    return {
        "full_per_s": round(best["full"], 1),
        "layers3_per_s": round(best["small"], 1),
        "ratio": round(best["small"] / best["full"], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", default=",".join(RUNS))
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--distil-texts", type=int, default=60_000)
    parser.add_argument("--distil-epochs", type=float, default=2.0)
    parser.add_argument("--merge", action="store_true")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "train2d.json")
    args = parser.parse_args()
    results: dict[str, Any] = {
        "command": "python " + " ".join([str(Path(__file__).relative_to(ROOT)), *sys.argv[1:]]),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "pairs": [list(p) for p in PAIRS],
        "runs": json.loads(args.out.read_text())["runs"] if args.merge and args.out.exists() else {},
    }
    with tempfile.TemporaryDirectory(prefix="nestvec-train2d-") as tmp:
        for name in args.runs.split(","):
            start = time.perf_counter()
            if RUNS[name].get("distil"):
                model, run = distil(Path(tmp), texts=args.distil_texts, epochs=args.distil_epochs, seed=args.seed)
            else:
                model, run = train(name, Path(tmp), epochs=args.epochs, seed=args.seed)
            run["sts_test"] = score(model, RUNS[name]["layers"])
            if RUNS[name]["layers"] == 6:
                run["onnx_2_threads"] = speed(model, args.rounds)
            if RUNS[name].get("distil"):  # the cut model against its teacher, alternating in one process
                run["onnx_2_threads"] = speed_pair(Path(tmp) / "full", model, args.rounds)
                run["kept_of_full_at_128"] = (
                    round(run["sts_test"]["L3_d128"] / results["runs"]["full"]["sts_test"]["L6_d384"], 4)
                    if "full" in results["runs"]
                    else None
                )
            run["wall_seconds"] = round(time.perf_counter() - start, 1)
            results["runs"][name] = run
            print(name, json.dumps(run), flush=True)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
