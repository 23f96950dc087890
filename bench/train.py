"""Fine-tuning runs of `nestvec train` on this machine, scored on held-out sets.

Runs (each from the bundled MiniLM, seeded, wall time recorded):
- `base`: no training, for reference;
- `cosent`: CoSENT on STS-B train, STS-B dev picks the best checkpoint;
- `cosent-matryoshka`: the same with MatryoshkaLoss over 384/256/128/64/32.
Each model is scored on STS-B test (Spearman ×100) at every dims of the ladder and on
msmarco-5k (nDCG@10, exact search) at 384, 128 and 64 dims, through nestvec's own eval with a
recipe `MODEL:dims=D`. STS-B test and msmarco-5k are never trained or tuned on.

Usage: python bench/train.py [--runs base,cosent,cosent-matryoshka] [--epochs 1] [--out FILE]
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
MSMARCO = SHARED / "retrieval" / "msmarco-5k"
LADDER = (384, 256, 128, 64, 32)
RUNS = {
    "base": None,
    "cosent": {"loss": "cosent", "dims": ()},
    "cosent-matryoshka": {"loss": "cosent", "dims": LADDER},
}


def score(model: str) -> dict[str, float]:
    from nestvec.eval.retrieval import evaluate_retrieval
    from nestvec.eval.setting import Setting
    from nestvec.eval.tasks import evaluate_sts

    found: dict[str, float] = {}
    for dims in LADDER:
        setting = Setting.parse(model if dims == 384 else f"{model}:dims={dims}")
        found[f"sts_test_{dims}"] = round(evaluate_sts(STS / "stsb-en-test.csv", setting).main, 2)
    for dims in (384, 128, 64):
        setting = Setting.parse(model if dims == 384 else f"{model}:dims={dims}")
        found[f"msmarco_ndcg10_{dims}"] = round(evaluate_retrieval(MSMARCO, setting).main, 2)
    return found


def train(name: str, options: dict[str, Any], folder: Path, *, epochs: float, seed: int) -> dict[str, Any]:
    from nestvec.train.data import read_training
    from nestvec.train.finetune import FinetuneConfig, finetune

    config = FinetuneConfig(
        loss=options["loss"], dims=options["dims"], epochs=epochs, batch_size=16, learning_rate=2e-5,
        seed=seed, dev=STS / "stsb-en-dev.csv", eval_steps=90, save_steps=90, progress=False,
    )  # fmt: skip
    report = finetune("minilm", folder / name, read_training(STS / "stsb-en-train.csv", "scored"), config=config)
    return {"steps": report.steps, "train_seconds": round(report.seconds, 1), "dev": report.dev}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", default=",".join(RUNS))
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "train.json")
    args = parser.parse_args()
    results: dict[str, Any] = {
        "command": "python " + " ".join([str(Path(__file__).relative_to(ROOT)), *sys.argv[1:]]),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "runs": {},
    }
    with tempfile.TemporaryDirectory(prefix="nestvec-train-") as tmp:
        for name in args.runs.split(","):
            start = time.perf_counter()
            options = RUNS[name]
            run: dict[str, Any] = {}
            model = "minilm"
            if options is not None:
                run = train(name, options, Path(tmp), epochs=args.epochs, seed=args.seed)
                model = str(Path(tmp) / name)
            run |= score(model)
            run["wall_seconds"] = round(time.perf_counter() - start, 1)
            results["runs"][name] = run
            print(name, json.dumps(run), flush=True)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(results, indent=1) + "\n")  # after each run: partial results survive


if __name__ == "__main__":
    main()
