"""Cached in-batch negatives (GradCache) against the plain loss, as `nestvec train` builds them.

One batch of 256 (title, abstract) pairs from the demo papers through MiniLM with dropout off
(eval mode, so both losses see the same network): `--loss mnrl` and `--loss cached-mnrl
--mini-batch 16` must give the same loss and the same gradient on every weight (max absolute
difference ≤ 1e-5). Peak memory of one training step is measured for each loss in its own fresh
process: Linux's peak resident set (VmHWM), reset through /proc/self/clear_refs once the model is
loaded and the batch tokenized, less the resident set (VmRSS) at that moment (on CUDA it would be
the allocator's peak; this machine has none).

Usage: python bench/cached_mnrl.py [--batch 256] [--mini-batch 16] [--max-tokens 128] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("NESTVEC_SHARED_DATA", ROOT.parent / "shared" / "data"))


def _setup(args: argparse.Namespace) -> tuple[Any, list[dict[str, Any]], Any]:
    import torch
    from sentence_transformers import SentenceTransformer

    from nestvec.encoders import resolve_model

    torch.manual_seed(0)
    model = SentenceTransformer(str(resolve_model("minilm")[1]), device="cpu")
    model.max_seq_length = args.max_tokens
    model.eval()  # dropout off: both losses then run the same function
    rows = [json.loads(line) for line in (SHARED / "papers.jsonl").open(encoding="utf-8")][: args.batch]
    features = [model.preprocess([r["title"] for r in rows]), model.preprocess([r["text"] for r in rows])]
    return model, features, torch.zeros(len(rows))


def _step(model: Any, features: list[dict[str, Any]], labels: Any, name: str, mini_batch: int) -> tuple[float, Any]:
    from nestvec.train.losses import build_loss

    model.zero_grad(set_to_none=True)
    loss = build_loss(model, name, mini_batch=mini_batch)(features, labels)
    loss.backward()
    return float(loss.detach()), {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}


def measure(args: argparse.Namespace) -> dict[str, Any]:
    model, features, labels = _setup(args)
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current resident set
    before_kib = _status_kib("VmRSS")
    start = time.perf_counter()
    loss, _ = _step(model, features, labels, args.measure, args.mini_batch)
    seconds = time.perf_counter() - start
    peak_kib = _status_kib("VmHWM")
    return {"loss": loss, "step_seconds": round(seconds, 2), "peak_rise_mib": round((peak_kib - before_kib) / 1024, 1)}


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def compare(args: argparse.Namespace) -> dict[str, Any]:
    model, features, labels = _setup(args)
    plain_loss, plain = _step(model, features, labels, "mnrl", args.mini_batch)
    cached_loss, cached = _step(model, features, labels, "cached-mnrl", args.mini_batch)
    worst = max(float((plain[n] - cached[n]).abs().max()) for n in plain)
    largest = max(float(g.abs().max()) for g in plain.values())
    return {
        "loss_mnrl": plain_loss,
        "loss_cached_mnrl": cached_loss,
        "loss_abs_difference": abs(plain_loss - cached_loss),
        "grad_max_abs_difference": worst,
        "grad_max_abs": largest,
        "weights_compared": len(plain),
        "same_weights_have_grads": sorted(plain) == sorted(cached),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--mini-batch", type=int, default=16)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--measure", choices=("mnrl", "cached-mnrl"), help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "cached-mnrl.json")
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args)))
        return
    results: dict[str, Any] = {
        "command": "python " + " ".join([str(Path(__file__).relative_to(ROOT)), *sys.argv[1:]]),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "batch": args.batch, "mini_batch": args.mini_batch, "max_tokens": args.max_tokens,
    }  # fmt: skip
    results["equality"] = compare(args)
    common = ["--batch", str(args.batch), "--mini-batch", str(args.mini_batch), "--max-tokens", str(args.max_tokens)]
    for name in ("mnrl", "cached-mnrl"):
        done = subprocess.run(
            [sys.executable, __file__, "--measure", name, *common], capture_output=True, text=True, check=True
        )
        results[name] = json.loads(done.stdout.strip().splitlines()[-1])
    results["peak_memory_ratio"] = round(results["mnrl"]["peak_rise_mib"] / results["cached-mnrl"]["peak_rise_mib"], 2)
    print(json.dumps(results, indent=1))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
