"""A fine-tuning run killed with SIGKILL mid-way and started again ends where an unbroken run ends.

Both runs are `nestvec train` from the bundled MiniLM (CoSENT on STS-B train, seeded, STS-B dev
every `--save-steps`), started as users start them, from the CLI. The second is killed once its
checkpoint at `--kill-at` steps is on disk, then the same command is run again and resumes from
it. Both models are scored on STS-B dev and test (Spearman ×100); the differences are the result.

Usage: python bench/train_resume.py [--steps 120] [--save-steps 40] [--kill-at 80] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("NESTVEC_SHARED_DATA", ROOT.parent / "shared" / "data"))
STS = SHARED / "sts"


def command(out: Path, args: argparse.Namespace) -> list[str]:
    return [
        sys.executable, "-m", "nestvec.cli.main", "train", str(out), "--data", str(STS / "stsb-en-train.csv"),
        "--kind", "scored", "--loss", "cosent", "--steps", str(args.steps), "--batch-size", "16",
        "--save-steps", str(args.save_steps), "--eval-steps", str(args.save_steps),
        "--dev", str(STS / "stsb-en-dev.csv"), "--seed", "0", "--json",
    ]  # fmt: skip


def score(model: Path) -> dict[str, float]:
    from nestvec.eval.setting import Setting
    from nestvec.eval.tasks import evaluate_sts

    return {
        f"sts_{split}": round(evaluate_sts(STS / f"stsb-en-{split}.csv", Setting.parse(str(model))).main, 3)
        for split in ("dev", "test")
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=120)
    parser.add_argument("--save-steps", type=int, default=40)
    parser.add_argument("--kill-at", type=int, default=80)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "train-resume.json")
    args = parser.parse_args()
    results: dict[str, Any] = {
        "command": "python " + " ".join([str(Path(__file__).relative_to(ROOT)), *sys.argv[1:]]),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
    }
    with tempfile.TemporaryDirectory(prefix="nestvec-resume-") as tmp:
        whole, cut = Path(tmp) / "whole", Path(tmp) / "cut"
        start = time.perf_counter()
        subprocess.run(command(whole, args), check=True, capture_output=True)
        results["unbroken"] = {"wall_seconds": round(time.perf_counter() - start, 1)} | score(whole)
        start = time.perf_counter()
        killed = subprocess.Popen(command(cut, args), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        checkpoint = cut.with_name("cut.checkpoints") / f"checkpoint-{args.kill_at}" / "trainer_state.json"
        while not checkpoint.exists():
            if killed.poll() is not None:
                raise SystemExit(f"the run ended (exit {killed.returncode}) before checkpoint {args.kill_at}")
            time.sleep(0.2)
        killed.send_signal(signal.SIGKILL)
        killed.wait()
        done = subprocess.run(command(cut, args), check=True, capture_output=True, text=True)
        report = json.loads(done.stdout)
        results["killed_and_resumed"] = {
            "killed_after_checkpoint": args.kill_at,
            "resumed_from": report["resumed_from"],
            "wall_seconds": round(time.perf_counter() - start, 1),
        } | score(cut)
    results["difference"] = {
        k: round(abs(results["unbroken"][k] - results["killed_and_resumed"][k]), 3) for k in ("sts_dev", "sts_test")
    }
    print(json.dumps(results, indent=1))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
