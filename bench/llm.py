"""Decoder LLMs as zero-shot embedders: SmolLM2-135M by every pooling method and a layer sweep,
beside MiniLM, on STS-B test (Spearman ×100) and msmarco-5k (nDCG@10, exact search).

Each row runs in its own process, so its peak RSS is its own (model, activations, the eval's
vectors); sentences/s is the encoding rate during the STS-B evaluation (2 threads unless
--threads). Every row goes through nestvec's eval with a recipe string
(`smollm2:pooling=echo:layers=15`), the path collections take.

Rows: `minilm`; `smollm2:pooling=M` for each method; the layer sweep `smollm2:pooling=M:layers=L`
for L in --layers and M in --sweep-methods.

With `--lora FOLDER`, SmolLM2 fine-tuned by `nestvec train` (a LoRA adapter, CoSENT on STS-B
train, PromptEOL pooling; LORA_ARGS) is trained there unless the folder exists, and scored as a row.

Usage: python bench/llm.py [--tasks sts,msmarco] [--methods mean,last,prompteol,echo,prepend]
       [--layers 5,10,15,20,25] [--sweep-methods mean,prompteol] [--only SETTING,...] [--lora FOLDER]
       [--out FILE]
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
STS_TEST = SHARED / "sts" / "stsb-en-test.csv"
MSMARCO = SHARED / "retrieval" / "msmarco-5k"
METHODS = "mean,last,prompteol,echo,prepend"
STS_TRAIN = SHARED / "sts" / "stsb-en-train.csv"
LORA_ARGS = ["--pooling", "prompteol", "--data", str(STS_TRAIN), "--kind", "scored", "--loss", "cosent",
             "--steps", "200", "--batch-size", "16", "--lr", "2e-4", "--save-steps", "50"]  # fmt: skip


def run_row(setting: str, tasks: list[str]) -> dict[str, Any]:
    """One row, in this process: load, score each task, report peak RSS."""
    from nestvec.encoders.loading import encoder_for
    from nestvec.eval.retrieval import evaluate_retrieval
    from nestvec.eval.setting import Setting
    from nestvec.eval.tasks import evaluate_sts

    parsed = Setting.parse(setting)
    start = time.perf_counter()
    encoder_for(parsed.recipe.encoder)  # loaded (and a GGUF converted) once, outside the timings
    row: dict[str, Any] = {"setting": setting, "load_seconds": round(time.perf_counter() - start, 1)}
    if "sts" in tasks:
        sts = evaluate_sts(STS_TEST, parsed)
        row |= {"sts_test": round(sts.main, 2), "sentences_per_s": round(sts.texts_per_s, 1)}
    if "msmarco" in tasks:
        found = evaluate_retrieval(MSMARCO, parsed)
        row |= {"msmarco_ndcg10": round(found.main, 2), "msmarco_texts_per_s": round(found.texts_per_s, 1)}
    # a later msmarco-only run of a row keeps the STS run's peak beside its own
    row["peak_rss_mib" if "sts" in tasks else "msmarco_peak_rss_mib"] = peak_rss_mib()
    return row


def peak_rss_mib() -> int:
    """This process's own peak (VmHWM): ru_maxrss would carry the forking parent's peak across exec."""
    status = Path("/proc/self/status").read_text()
    return round(int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:"))) / 1024)


def train_lora(out: Path) -> dict[str, Any]:
    """The LoRA CoSENT fine-tune of SmolLM2 on STS-B train (never its dev or test), through the CLI."""
    command = [str(Path(sys.executable).with_name("nestvec")), "train", str(out), "--base", "smollm2", *LORA_ARGS]
    if not out.exists():
        subprocess.run([*command, "--json"], check=True, capture_output=True)
    record = json.loads((out / "config.json").read_text())["training"]
    return {"train_command": " ".join(["nestvec", *command[1:]]), "train_seconds": record["seconds"],
            "train_steps": record["steps"]}  # fmt: skip


def settings(args: argparse.Namespace) -> list[str]:
    rows = ["minilm"] + [f"smollm2:pooling={m}" for m in args.methods.split(",") if m]
    rows += [
        f"smollm2:pooling={m}:layers={layer}"
        for m in args.sweep_methods.split(",")
        if m
        for layer in (int(x) for x in args.layers.split(",") if x)
    ]
    if args.only:
        wanted = args.only.split(",")
        rows = [r for r in rows if r in wanted] + [w for w in wanted if w not in rows]
    return rows


def table(results: dict[str, Any]) -> str:
    """The results as the markdown table docs/benchmarks.md shows."""
    lines = [
        "| setting | STS-B test | msmarco-5k nDCG@10 | STS-B sentences/s | peak RSS MiB |",
        "| --- | --- | --- | --- | --- |",
    ]
    for setting, row in results["rows"].items():
        cells = [row.get("sts_test", "—"), row.get("msmarco_ndcg10", "—"), row.get("sentences_per_s", "—"),
                 row.get("peak_rss_mib", "—")]  # fmt: skip
        lines.append(f"| `{setting}` | " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", default="sts,msmarco")
    parser.add_argument("--methods", default=METHODS)
    parser.add_argument("--layers", default="5,10,15,20,25")
    parser.add_argument("--sweep-methods", default="mean,prompteol")
    parser.add_argument("--only", default="", help="comma-separated settings to run (others skipped)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "llm.json")
    parser.add_argument("--lora", type=Path, help="train (unless there) and score the LoRA CoSENT adapter here")
    parser.add_argument("--table", action="store_true", help="print --out's results as a markdown table")
    parser.add_argument("--row", help=argparse.SUPPRESS)  # internal: run one row in this process
    args = parser.parse_args()
    tasks = args.tasks.split(",")
    if args.row:
        print(json.dumps(run_row(args.row, tasks)))
        return
    if args.table:
        print(table(json.loads(args.out.read_text())))
        return
    earlier = json.loads(args.out.read_text()) if args.out.exists() else {}
    command = "python " + " ".join([str(Path(__file__).relative_to(ROOT)), *sys.argv[1:]])
    results: dict[str, Any] = {
        "commands": [*earlier.get("commands", []), command],  # the runs whose rows this file holds, in order
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {args.threads} threads",
        "rows": earlier.get("rows", {}),
    }
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "PYTHONWARNINGS": "ignore"}
    extra: dict[str, dict[str, Any]] = {}
    if args.lora:
        extra[str(args.lora)] = train_lora(args.lora)
    for setting in settings(args) + list(extra):
        out = subprocess.run(
            [sys.executable, __file__, "--row", setting, "--tasks", args.tasks],
            capture_output=True, text=True, env=env, check=False,
        )  # fmt: skip
        if out.returncode:
            print(setting, "failed:", out.stderr[-2000:], flush=True)
            continue
        row = json.loads(out.stdout.strip().splitlines()[-1])
        results["rows"][setting] = {**results["rows"].get(setting, {}), **row, **extra.get(setting, {})}
        print(json.dumps(results["rows"][setting]), flush=True)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=1) + "\n")  # after each row: partial results survive


if __name__ == "__main__":
    main()
