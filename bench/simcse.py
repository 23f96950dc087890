"""Unsupervised SimCSE on dictionary text (`nestvec train --kind text --loss simcse`), scored on a
held-out gloss→headword retrieval set (bench/gloss_data.py: WordNet glosses as queries, lemmas as
the corpus; the test synsets' glosses and their lemmas' GCIDE definitions are never trained on).

Each run starts from the bundled MiniLM, trains for `--steps` batches of `--batch-size` texts,
and is scored on gloss-test MRR@10 and STS-B test (Spearman ×100); gloss-dev and STS-B dev are
scored too, the sets any choice of settings is made on. Wall times are recorded.

Usage: python bench/simcse.py [--steps 600] [--batch-size 64] [--lr 1e-5] [--batches clustered] [--headwords]
       [--out FILE]
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gloss_data import write_sets

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("NESTVEC_SHARED_DATA", ROOT.parent / "shared" / "data"))
STS = SHARED / "sts"


def score(model: str, sets: dict[str, Path]) -> dict[str, float]:
    from nestvec.eval.retrieval import evaluate_retrieval
    from nestvec.eval.setting import Setting
    from nestvec.eval.tasks import evaluate_sts

    setting = Setting.parse(model)
    found: dict[str, float] = {}
    for split in ("dev", "test"):
        metrics = evaluate_retrieval(sets[split], setting).metrics
        found[f"gloss_{split}_mrr10"] = round(metrics["mrr@10"], 2)
        found[f"gloss_{split}_ndcg10"] = round(metrics["ndcg@10"], 2)
        found[f"sts_{split}"] = round(evaluate_sts(STS / f"stsb-en-{split}.csv", setting).main, 2)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batches", default="random", help="random or clustered (train/batches.py)")
    parser.add_argument("--headwords", action="store_true", help="train on the unheld headwords too (gloss_data)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "simcse.json")
    args = parser.parse_args()
    from nestvec.train.data import read_training
    from nestvec.train.finetune import FinetuneConfig, finetune

    results: dict[str, Any] = {
        "command": "python " + " ".join([str(Path(__file__).relative_to(ROOT)), *sys.argv[1:]]),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "runs": {},
    }
    with tempfile.TemporaryDirectory(prefix="nestvec-simcse-") as tmp:
        sets = write_sets(Path(tmp) / "gloss", seed=args.seed, headwords=args.headwords)
        start = time.perf_counter()
        results["runs"]["base"] = score("minilm", sets) | {"wall_seconds": round(time.perf_counter() - start, 1)}
        print("base", results["runs"]["base"], flush=True)
        start = time.perf_counter()
        config = FinetuneConfig(
            loss="simcse", max_steps=args.steps, batch_size=args.batch_size, learning_rate=args.lr, seed=args.seed,
            batches=args.batches,
            save_steps=max(args.steps // 4, 1), progress=False,
        )  # fmt: skip
        data = read_training(sets["train"], "text")
        report = finetune("minilm", Path(tmp) / "simcse", data, config=config)
        run = {"texts": data.rows, "steps": report.steps, "train_seconds": round(report.seconds, 1)}
        run |= score(str(Path(tmp) / "simcse"), sets)
        run["wall_seconds"] = round(time.perf_counter() - start, 1)
        name = "simcse" if args.batches == "random" else f"simcse-{args.batches}"
        name += "-headwords" if args.headwords else ""
        results["runs"][name] = run
        print(name, run, flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
