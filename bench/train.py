"""Fine-tuning runs of `nestvec train` on this machine, scored on held-out sets.

Runs (each from the bundled MiniLM, seeded, wall time recorded):
- `base`: no training, for reference;
- `cosent`: CoSENT on STS-B train, STS-B dev picks the best checkpoint;
- `cosent-matryoshka`: the same with MatryoshkaLoss over 384/256/128/64/32;
- `mixed`, `mixed-matryoshka`: CoSENT on STS-B train beside in-batch negatives (MNRL) on the
  train papers' title→abstract pairs (bench/train_data.py), one loss per data set;
- `cosent-matryoshka-similarity`: `cosent-matryoshka` beside the similarity loss (every prefix of
  the ladder learns the base model's in-batch cosine similarities, Matryoshka-Adaptor style) over
  `--unlabeled` texts: STS-B train sentences, train papers' abstracts and WordNet/GCIDE train
  definitions (bench/gloss_data.py), the base MiniLM as the teacher;
- `rotated`: `cosent-matryoshka-similarity` started from the principal axes of the training texts
  (`--rotate`, nestvec/train/rotation.py), with msmarco-5k's corpus passages first among the
  unlabeled texts (the issue's unlabeled in-domain text; its queries and qrels stay for the test);
- `ict`: `cosent-matryoshka-similarity` with msmarco-5k's passages first among the unlabeled texts,
  beside in-batch negatives + Matryoshka over Inverse Cloze Task pairs cut from those passages (a
  sentence as the query, the rest of its passage as the positive; bench/train_data.py);
- `queries`: `cosent-matryoshka` beside in-batch negatives + Matryoshka over synthetic
  question→passage pairs for msmarco-5k's corpus passages (`--queries`, written by the bundled
  SmolLM2 with bench/gen_queries.py and kept by round-trip consistency, bench/train_data.py; the
  GPL/InPars way to adapt to a corpus with no labels: its queries and qrels stay for the test);
- `queries-clustered`: `queries` with each in-batch batch drawn from one k-means cluster of the
  base model's question vectors (`--batches clustered`, TAS-Balanced style: hard in-batch negatives);
- `queries-similarity`: `queries` beside the similarity loss, msmarco-5k's passages first among
  the unlabeled texts (as in `rotated`);
- `teacher-pairs`: `cosent-matryoshka` beside CoSENT + Matryoshka over (generated question,
  passage) pairs scored by the base model's own 384-dim cosine, passages taken at fixed ranks of
  each question's list (bench/train_data.write_teacher_pairs): every prefix learns to order a
  question's passages as the full width does;
- `teacher-lists`: `cosent-matryoshka` beside the listwise loss + Matryoshka over the same
  teacher, one row per question (its passages at five ranks and one at random,
  bench/train_data.write_teacher_lists): every prefix learns the softmax the full width gives a
  question's passages, compared with each other rather than with other questions' pairs;
  `teacher-both` trains on the teacher's pairs and lists together (three sets: STS-B, pairs, lists),
  `teacher-both-lists3` the same with the lists three times (as three sets);
  `teacher-lists-flat` is `teacher-lists` without the Matryoshka ladder,
  `teacher-both-lists3-flat` is `teacher-both-lists3` without it (same sets, steps and seed), and
  `teacher-lists-rotated` the same started from the principal axes of its training texts.
For every trained run, WiSE-FT mixes of the fine-tune with the base (`--base-weights`) are scored
on the dev sets (STS-B dev, held-out dev papers' title→abstract nDCG@10); the weight with the
best mean of the two is chosen on dev alone, and only the plain fine-tune (weight 0) and the
chosen mix are scored on the test sets: STS-B test (Spearman ×100) at every dims of the ladder,
msmarco-5k and the test papers (nDCG@10, exact search) at 384, 128 and 64 dims, each through
nestvec's own eval with a recipe `MODEL:dims=D`. Test sets are never trained or tuned on.

Usage: python bench/train.py [--runs base,mixed,mixed-matryoshka] [--epochs 1] [--base-weights 0.3,0.5]
       [--unlabeled 8000] [--queries GENERATED.jsonl] [--keep DIR] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_data import write_title_beir, write_title_pairs

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("NESTVEC_SHARED_DATA", ROOT.parent / "shared" / "data"))
STS = SHARED / "sts"
MSMARCO = SHARED / "retrieval" / "msmarco-5k"
PAPERS = SHARED / "papers.jsonl"
QUERIES = ROOT / "bench" / "data" / "msmarco-5k-questions.jsonl"  # bench/gen_queries.py over the corpus
LADDER = (384, 256, 128, 64, 32)
RUNS: dict[str, dict[str, Any] | None] = {
    "base": None,
    "cosent": {"mixed": False, "dims": ()},
    "cosent-matryoshka": {"mixed": False, "dims": LADDER},
    "mixed": {"mixed": True, "dims": ()},
    "mixed-matryoshka": {"mixed": True, "dims": LADDER},
    "cosent-matryoshka-similarity": {"mixed": False, "dims": LADDER, "similarity": True},
    "rotated": {"mixed": False, "dims": LADDER, "similarity": True, "rotate": True, "corpus": True},
    "ict": {"mixed": False, "dims": LADDER, "similarity": True, "corpus": True, "ict": True},
    "queries": {"mixed": False, "dims": LADDER, "queries": True},
    "queries-clustered": {"mixed": False, "dims": LADDER, "queries": True, "batches": "clustered"},
    "queries-similarity": {"mixed": False, "dims": LADDER, "queries": True, "similarity": True, "corpus": True},
    "teacher-pairs": {"mixed": False, "dims": LADDER, "teacher_pairs": True},
    "teacher-lists": {"mixed": False, "dims": LADDER, "teacher_lists": True},
    "teacher-both": {"mixed": False, "dims": LADDER, "teacher_pairs": True, "teacher_lists": True},
    "teacher-both-lists3": {
        "mixed": False,
        "dims": LADDER,
        "teacher_pairs": True,
        "teacher_lists": True,
        "lists_repeat": 3,
    },
    "teacher-lists-flat": {"mixed": False, "dims": (), "teacher_lists": True},
    "teacher-both-lists3-flat": {
        "mixed": False,
        "dims": (),
        "teacher_pairs": True,
        "teacher_lists": True,
        "lists_repeat": 3,
    },
    "teacher-lists-rotated": {"mixed": False, "dims": LADDER, "teacher_lists": True, "rotate": True},
}


def _setting(model: str, dims: int) -> Any:
    from nestvec.eval.setting import Setting

    return Setting.parse(model if dims == 384 else f"{model}:dims={dims}")


def score_dev(model: str, titles: Path) -> dict[str, float]:
    from nestvec.eval.retrieval import evaluate_retrieval
    from nestvec.eval.tasks import evaluate_sts

    sts = evaluate_sts(STS / "stsb-en-dev.csv", _setting(model, 384)).main
    papers = evaluate_retrieval(titles, _setting(model, 384), split="dev").main
    return {"sts_dev": round(sts, 2), "papers_dev_ndcg10": round(papers, 2), "mean": round((sts + papers) / 2, 2)}


def score_test(model: str, titles: Path) -> dict[str, float]:
    from nestvec.eval.retrieval import evaluate_retrieval
    from nestvec.eval.tasks import evaluate_sts

    found: dict[str, float] = {}
    for dims in LADDER:
        found[f"sts_test_{dims}"] = round(evaluate_sts(STS / "stsb-en-test.csv", _setting(model, dims)).main, 2)
    for dims in (384, 128, 64):
        found[f"msmarco_ndcg10_{dims}"] = round(evaluate_retrieval(MSMARCO, _setting(model, dims)).main, 2)
        found[f"papers_test_ndcg10_{dims}"] = round(evaluate_retrieval(titles, _setting(model, dims)).main, 2)
    return found


def write_unlabeled(folder: Path, count: int, seed: int, *, corpus: bool = False) -> Path:
    """Training-split text only: (with `corpus`, msmarco-5k's passages, never its queries), train
    papers' abstracts, then STS-B train sentences and train glosses in turn."""
    from gloss_data import write_sets
    from nestvec.eval.readers import read_beir, read_sts
    from train_data import split_of

    sts = read_sts(STS / "stsb-en-train.csv")
    papers = [json.loads(line) for line in PAPERS.read_text(encoding="utf-8").splitlines() if line.strip()]
    abstracts = [p["text"] for p in papers if p.get("text") and split_of(p["id"]) == "train"]
    glosses = write_sets(folder / "gloss", seed=seed)["train"].read_text(encoding="utf-8").splitlines()
    rng = random.Random(seed)
    sentences = list(dict.fromkeys(sts.texts1 + sts.texts2))
    rng.shuffle(sentences)
    rng.shuffle(glosses)
    # every abstract (the only passages), then sentences and definitions in turn
    mixed = [t for pair in zip(sentences, glosses, strict=False) for t in pair]
    passages = [f"{t} {x}".strip() for t, x in read_beir(MSMARCO).corpus.values()] if corpus else []
    texts = list(dict.fromkeys(passages + abstracts + mixed))[:count]
    out = folder / "unlabeled.txt"
    out.write_text("".join(t.replace("\n", " ") + "\n" for t in texts), encoding="utf-8")
    return out


def write_ict(folder: Path, seed: int) -> Path:
    """Inverse Cloze Task pairs over msmarco-5k's corpus passages (unlabeled text; its queries and
    qrels stay for the test)."""
    from nestvec.eval.readers import read_beir
    from train_data import write_ict_pairs

    passages = [f"{t} {x}".strip() for t, x in read_beir(MSMARCO).corpus.values()]
    return write_ict_pairs(passages, folder / "ict-pairs.jsonl", seed=seed)


def write_queries(generated: Path, folder: Path) -> Path:
    from nestvec.eval.readers import read_beir
    from train_data import write_query_pairs

    passages = [f"{t} {x}".strip() for t, x in read_beir(MSMARCO).corpus.values()]
    return write_query_pairs(generated, passages, folder / "query-pairs.jsonl")


def write_teachers(generated: Path, folder: Path, seed: int, *, lists: bool = False) -> Path:
    from nestvec.eval.readers import read_beir
    from train_data import write_teacher_lists, write_teacher_pairs

    passages = [f"{t} {x}".strip() for t, x in read_beir(MSMARCO).corpus.values()]
    if lists:
        return write_teacher_lists(generated, passages, folder / "teacher-lists.jsonl", seed=seed)
    return write_teacher_pairs(generated, passages, folder / "teacher-pairs.csv", seed=seed)


def train(name: str, options: dict[str, Any], folder: Path, args: argparse.Namespace) -> dict[str, Any]:
    from nestvec.train.data import read_training
    from nestvec.train.finetune import FinetuneConfig, finetune

    sets = [read_training(STS / "stsb-en-train.csv", "scored")]
    losses = ["cosent"]
    if options["mixed"]:
        sets.append(read_training(write_title_pairs(PAPERS, folder / "title-pairs.jsonl"), "pairs"))
        losses.append("mnrl")
    if options.get("ict"):
        sets.append(read_training(write_ict(folder, args.seed), "pairs"))
        losses.append("mnrl")
    if options.get("queries"):
        sets.append(read_training(write_queries(args.queries, folder), "pairs"))
        losses.append("mnrl")
    if options.get("teacher_pairs"):
        sets.append(read_training(write_teachers(args.queries, folder, args.seed), "scored"))
        losses.append("cosent")
    if options.get("teacher_lists"):
        lists = read_training(write_teachers(args.queries, folder, args.seed, lists=True), "ranked")
        for _ in range(options.get("lists_repeat", 1)):  # each copy a set of its own, shuffled apart
            sets.append(lists)
            losses.append("listwise")
    if options.get("similarity"):
        texts = write_unlabeled(folder, args.unlabeled, args.seed, corpus=options.get("corpus", False))
        sets.append(read_training(texts, "text"))
        losses.append("similarity")
    config = FinetuneConfig(
        loss=tuple(losses), dims=options["dims"], epochs=args.epochs, batch_size=16, learning_rate=2e-5, seed=args.seed,
        teacher="minilm" if options.get("similarity") else None, rotate=options.get("rotate", False),
        dev=STS / "stsb-en-dev.csv", eval_steps=90, save_steps=90, progress=False,
        batches=options.get("batches", "random"),
    )  # fmt: skip
    report = finetune("minilm", folder / name, sets, config=config)
    return {"steps": report.steps, "train_seconds": round(report.seconds, 1), "dev_during_training": report.dev}


def mixed_with_base(tuned: Path, weight: float) -> Path:
    from sentence_transformers import SentenceTransformer

    from nestvec.encoders import resolve_model
    from nestvec.train.interpolate import mix_weights

    out = tuned.with_name(f"{tuned.name}-w{weight}")
    model = mix_weights(SentenceTransformer(str(tuned), device="cpu"), resolve_model("minilm")[1], base_weight=weight)
    model.save(str(out))
    return out


def run_one(name: str, tmp: Path, titles: Path, args: argparse.Namespace) -> dict[str, Any]:
    options = RUNS[name]
    if options is None:
        return {"dev": score_dev("minilm", titles), "test": score_test("minilm", titles)}
    run = train(name, options, tmp, args)
    tuned = tmp / name
    models = {0.0: tuned} | {w: mixed_with_base(tuned, w) for w in args.base_weights}
    run["dev_by_base_weight"] = {str(w): score_dev(str(m), titles) for w, m in models.items()}
    chosen = max(models, key=lambda w: run["dev_by_base_weight"][str(w)]["mean"])
    run["chosen_base_weight"] = chosen
    run["test"] = score_test(str(tuned), titles)
    if chosen:
        run["test_chosen"] = score_test(str(models[chosen]), titles)
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", default="base,mixed,mixed-matryoshka")
    parser.add_argument("--epochs", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--unlabeled", type=int, default=8_000, help="texts for the similarity loss")
    parser.add_argument("--queries", type=Path, default=QUERIES, help="bench/gen_queries.py output")
    parser.add_argument("--base-weights", type=lambda s: [float(w) for w in s.split(",") if w], default=[0.3, 0.5])
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "train.json")
    parser.add_argument("--keep", type=Path, help="train in this folder and keep the models (default: a temporary one)")
    args = parser.parse_args()
    results: dict[str, Any] = {
        "command": "python " + " ".join([str(Path(__file__).relative_to(ROOT)), *sys.argv[1:]]),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "runs": {},
    }
    with tempfile.TemporaryDirectory(prefix="nestvec-train-") as scratch:
        tmp = str(args.keep or scratch)
        Path(tmp).mkdir(parents=True, exist_ok=True)
        titles = write_title_beir(PAPERS, Path(tmp) / "papers-titles")
        for name in args.runs.split(","):
            start = time.perf_counter()
            run = run_one(name, Path(tmp), titles, args)
            run["wall_seconds"] = round(time.perf_counter() - start, 1)
            results["runs"][name] = run
            print(name, json.dumps(run), flush=True)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(results, indent=1) + "\n")  # after each run: partial results survive


if __name__ == "__main__":
    main()
