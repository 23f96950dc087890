"""Hash embeddings distilled from MiniLM, and how they (and the static model) take typos.

Training texts: bench/realdata.py's real texts (WordNet glosses, GCIDE definitions, msmarco-5k
passages, the demo abstracts, STS-B sentences), minus every STS-B *test* sentence; targets: their
MiniLM vectors (cached by realdata.py). Evaluation: STS-B test Spearman, and the same on a copy
with one random character typo (substitution, deletion, insertion or transposition) in one word
of every sentence that has a word of 3+ letters; the static model from `nestvec distill` on the
same copies for comparison. With --lexicon N (default 300,000) the model keeps the frequent
tokens and bigrams of every text of bench/realdata.py's pool (about a million; unlabeled, so not
limited to the --texts trained on) except the STS-B test sentences, to mend one-letter typos by
context; the same table without them is measured too.

Usage: python bench/hashed.py [--texts 250000] [--epochs 2] [--lexicon 300000] [--out bench/results/hashed.json]
       python bench/hashed.py --speed-only [--out bench/results/hashed-speed.json]
With --speed-only, no table is trained (no teacher vectors are needed): the same lexicon is built
and saved beside a random table of the same shape, whose values do not change what encoding costs,
and sentences/s are measured as in the full run, with and without the lexicon, and with the
lexicon's saved neighbours removed (folders saved before they were), whose mended tokens must match.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
STS = ROOT / "tests" / "data" / "sts" / "stsb-en-test.csv"
LETTERS = "abcdefghijklmnopqrstuvwxyz"


def typo(sentence: str, rng: random.Random) -> str:
    spans = [m.span() for m in re.finditer(r"[A-Za-z]{3,}", sentence)]
    if not spans:
        return sentence
    start, end = rng.choice(spans)
    word = list(sentence[start:end])
    i = rng.randrange(len(word))
    kind = rng.choice(("substitute", "delete", "insert", "transpose"))
    if kind == "substitute":
        word[i] = rng.choice([c for c in LETTERS if c != word[i].lower()])
    elif kind == "delete":
        del word[i]
    elif kind == "insert":
        word.insert(i, rng.choice(LETTERS))
    else:
        i = min(i, len(word) - 2)
        word[i], word[i + 1] = word[i + 1], word[i]
    return sentence[:start] + "".join(word) + sentence[end:]


def sts_pairs(noisy: bool) -> tuple[list[str], list[str], list[float]]:
    with STS.open(encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    rng = random.Random(13)
    a = [typo(r[0], rng) if noisy else r[0] for r in rows]
    b = [typo(r[1], rng) if noisy else r[1] for r in rows]
    return a, b, [float(r[2]) for r in rows]


def spearman(encoder: object, noisy: bool) -> float:
    from scipy.stats import spearmanr

    a, b, gold = sts_pairs(noisy)
    va, vb = encoder.encode(a), encoder.encode(b)  # type: ignore[attr-defined]
    return float(100 * spearmanr((va * vb).sum(1), gold)[0])


def measure_teacher() -> dict[str, float]:
    """The teacher's own drop on the same typo copy: what the students' drops compare with."""
    import nestvec

    teacher = nestvec.load_encoder("minilm")
    clean, noisy = spearman(teacher, False), spearman(teacher, True)
    row = {"stsb_test": clean, "stsb_test_typos": noisy, "relative_drop": (clean - noisy) / clean}
    print("teacher", row, flush=True)
    return row


def _timed(model: object, texts: list[str]) -> tuple[float, float]:
    """(cold, warm) sentences/s: a new model object (no typo decisions cached), then the same again."""
    from nestvec.encoders.hashed import HashEncoder

    fresh = HashEncoder(model.source)  # type: ignore[attr-defined]
    start = time.perf_counter()
    fresh.encode(texts)
    cold = len(texts) / (time.perf_counter() - start)
    start = time.perf_counter()
    fresh.encode(texts)
    return cold, len(texts) / (time.perf_counter() - start)


def _timed_static(model: object, texts: list[str]) -> tuple[float, float]:
    speeds = []
    for _ in range(2):
        start = time.perf_counter()
        model.encode(texts)  # type: ignore[attr-defined]
        speeds.append(len(texts) / (time.perf_counter() - start))
    return speeds[0], speeds[1]


def speed_only(args: argparse.Namespace) -> None:
    import platform

    import realdata
    from nestvec.encoders.hashed import HashEncoder, HashSpec, Lexicon, save_hashed, words

    a, b, _ = sts_pairs(noisy=False)
    noisy_a, noisy_b, _ = sts_pairs(noisy=True)
    held_out = set(a) | set(b)
    lexicon_texts = [t for t in realdata.pool() if t not in held_out]
    tmp = Path(tempfile.mkdtemp(prefix="nestvec-hash-speed-"))
    spec = HashSpec(rows=args.rows, dim=384, features=tuple(args.features.split(",")))
    table = np.random.default_rng(0).standard_normal((spec.rows, spec.dim), dtype=np.float32)
    start = time.perf_counter()
    Lexicon.from_texts(lexicon_texts, split=words, size=args.lexicon).save(tmp / "hash")
    lexicon_s = time.perf_counter() - start
    save_hashed(tmp / "hash", spec=spec, table=table, config={"name": "random table, speed only"})
    shutil.copytree(tmp / "hash", tmp / "looked-up")
    (tmp / "looked-up" / "neighbours.safetensors").unlink()
    table_only_copy(tmp / "hash", tmp / "bare")
    results: dict = {
        "table": "random, same shape as the full run's (encoding cost does not depend on its values)",
        "lexicon": args.lexicon,
        "lexicon_texts": len(lexicon_texts),
        "lexicon_and_neighbours_s": lexicon_s,
        "cpu": platform.processor() or platform.machine(),
        "sentences": len(a),
    }
    models = {name: HashEncoder(tmp / name) for name in ("hash", "looked-up", "bare")}
    every = a + b + noisy_a + noisy_b
    tokens = {name: [m.lexicon.mend(words(t)) for t in every] for name, m in models.items() if m.lexicon}
    results["same_mended_tokens_as_looked_up"] = tokens["hash"] == tokens["looked-up"]
    labels = {"hash": "hash", "looked-up": "hash, neighbours looked up", "bare": "hash without lexicon"}
    for name, model in models.items():
        model.encode(every)  # as in the full run: word features cached by the STS-B passes before timing
        runs = [_timed(model, a) for _ in range(3)]
        results[labels[name]] = {
            "sentences_per_s": statistics.median(cold for cold, _ in runs),
            "sentences_per_s_seen_before": statistics.median(warm for _, warm in runs),
            "runs": runs,
        }
        print(labels[name], results[labels[name]], flush=True)
    results["command"] = "python bench/hashed.py " + " ".join(sys.argv[1:])
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print("saved", args.out)
    shutil.rmtree(tmp)


def table_only_copy(model: Path, to: Path) -> Path:
    shutil.copytree(model, to)
    for name in ("lexicon.json", "bigrams.safetensors", "neighbours.safetensors"):
        (to / name).unlink()
    return to


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=250_000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--rows", type=int, default=1 << 17)
    parser.add_argument("--typo-rate", type=float, default=0.5)
    parser.add_argument("--features", default="norm,prefix,suffix,shape,trigrams")
    parser.add_argument("--lexicon", type=int, default=300_000, help="tokens kept to mend typos (0: none)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "hashed.json")
    parser.add_argument(
        "--teacher-only", action="store_true", help="only measure the teacher (MiniLM) on the typo copy, into --out"
    )
    parser.add_argument("--speed-only", action="store_true", help="no training: sentences/s with a random table")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "bench"))
    if args.speed_only:
        if args.out == ROOT / "bench" / "results" / "hashed.json":
            args.out = ROOT / "bench" / "results" / "hashed-speed.json"
        speed_only(args)
        return
    if args.teacher_only:
        results = json.loads(args.out.read_text()) if args.out.exists() else {}
        results["teacher"] = measure_teacher()
        results["teacher_command"] = "python bench/hashed.py " + " ".join(sys.argv[1:])
        args.out.write_text(json.dumps(results, indent=2) + "\n")
        return
    import nestvec
    import realdata
    from nestvec.encoders.hashed import HashEncoder, HashSpec
    from nestvec.train import distill
    from nestvec.train.hashed import train_hashed

    corpus, _ = realdata.collect(250_000)
    vectors = np.load(realdata.CACHE / "real-250000.npy", mmap_mode="r")
    a, b, _ = sts_pairs(noisy=False)
    held_out = set(a) | set(b)
    keep = [i for i, t in enumerate(corpus[: args.texts]) if t not in held_out]
    texts = [corpus[i] for i in keep]
    tmp = Path(tempfile.mkdtemp(prefix="nestvec-hash-"))
    lexicon_texts = [t for t in realdata.pool() if t not in held_out] if args.lexicon else None
    report = train_hashed(
        texts,
        np.asarray(vectors[keep]),
        tmp / "hash",
        spec=HashSpec(rows=args.rows, features=tuple(args.features.split(","))),
        epochs=args.epochs,
        typo_rate=args.typo_rate,
        lexicon=args.lexicon,
        lexicon_texts=lexicon_texts,
        name="MiniLM hash embeddings",
    )
    print("trained", report, flush=True)
    hashed = nestvec.load_encoder(tmp / "hash")
    bare = None
    if args.lexicon:  # the same table without the lexicon: what the mending adds
        bare = nestvec.load_encoder(table_only_copy(tmp / "hash", tmp / "bare"))
    static = nestvec.load_encoder(distill("minilm", tmp / "static").path)
    results: dict = {
        "training_texts": len(texts),
        "dropped_sts_test_sentences": args.texts - len(texts),
        "train_s": report.seconds,
        "typo_rate": args.typo_rate,
        "features": args.features,
        "epochs": args.epochs,
        "final_loss": report.final_loss,
        "rows": args.rows,
        "lexicon": args.lexicon,
        "lexicon_texts": len(lexicon_texts or []),
        "lexicon_tokens": len(hashed.lexicon.counts) if hashed.lexicon else 0,
        "table_mib": args.rows * hashed.dim * 4 / 2**20,
    }
    results["teacher"] = measure_teacher()
    encoders = [("hash", hashed), ("static", static)] + ([("hash without lexicon", bare)] if bare else [])
    for name, encoder in encoders:
        clean, noisy = spearman(encoder, False), spearman(encoder, True)
        # load_encoder caches per process: a new HashEncoder starts with no typo decisions cached
        runs = [_timed(encoder, a) if isinstance(encoder, HashEncoder) else _timed_static(encoder, a) for _ in range(3)]
        results[name] = {
            "stsb_test": clean,
            "stsb_test_typos": noisy,
            "relative_drop": (clean - noisy) / clean,
            "sentences_per_s": statistics.median(cold for cold, _ in runs),
            "sentences_per_s_seen_before": statistics.median(warm for _, warm in runs),
        }
        print(name, results[name], flush=True)
    results["command"] = "python bench/hashed.py " + " ".join(sys.argv[1:])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print("saved", args.out)


if __name__ == "__main__":
    main()
