"""Static models: nestvec distill vs Model2Vec, distilled from the same teacher in the same run.

Measures distillation time, STS-B test Spearman, msmarco-5k nDCG@10 (exact cosine top 10,
documents as "title text"), and texts/s on STS-B test sentences and the demo abstracts for
nestvec's static model, Model2Vec's (model2vec is a bench dependency: pip install
'model2vec[distill]') and the teacher itself (nestvec's default encoder, ONNX Runtime fp32 on
CPU, batch 64), 2 threads; throughput is the best of 5 rounds that interleave the models.

The refined row trains the distilled table on --refine-texts of bench/realdata.py's real texts
(STS-B test sentences removed) towards their cached MiniLM vectors.

Usage: python bench/static.py [--dims 256] [--threads 2] [--refine-texts 250000] [--out bench/results/static.json]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("NESTVEC_SHARED_DATA", ROOT.parent / "shared" / "data"))
STS = ROOT / "tests" / "data" / "sts" / "stsb-en-test.csv"
PAPERS = ROOT / "examples" / "papers.jsonl"

Embed = Callable[[list[str]], np.ndarray]


def sts_spearman(embed: Embed) -> float:
    from scipy.stats import spearmanr

    with STS.open(encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    a, b = embed([r[0] for r in rows]), embed([r[1] for r in rows])
    a /= np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
    b /= np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-12)
    return float(100 * spearmanr((a * b).sum(1), [float(r[2]) for r in rows])[0])


def msmarco_ndcg(embed: Embed) -> float:
    from nestvec.eval.metrics import ndcg_at
    from nestvec.eval.readers import read_beir

    beir = read_beir(SHARED / "retrieval" / "msmarco-5k")
    ids = list(beir.corpus)
    docs = embed([f"{t} {x}".strip() for t, x in beir.corpus.values()])
    qids = [q for q in beir.queries if q in beir.qrels]
    queries = embed([beir.queries[q] for q in qids])
    docs /= np.maximum(np.linalg.norm(docs, axis=1, keepdims=True), 1e-12)
    queries /= np.maximum(np.linalg.norm(queries, axis=1, keepdims=True), 1e-12)
    top = np.argsort(-(queries @ docs.T), axis=1)[:, :10]
    return float(
        100 * np.mean([ndcg_at([ids[i] for i in row], beir.qrels[q], 10) for q, row in zip(qids, top, strict=True)])
    )


def throughput(embed: Embed, texts: list[str], rounds: int = 5, repeat: int = 8) -> float:
    """Best of `rounds` passes over the texts repeated `repeat` times (a pass of 2.7k sentences
    takes ~60 ms with a static model: too short to time alone)."""
    embed(texts[:64])
    texts = texts * repeat
    best = 0.0
    for _ in range(rounds):
        start = time.perf_counter()
        embed(texts)
        best = max(best, len(texts) / (time.perf_counter() - start))
    return best


def refine_on_real_text(model: Path, output: Path, count: int, epochs: int) -> tuple[object, float]:
    """Refinement on bench/realdata.py's real texts (their MiniLM vectors are cached there),
    never on STS-B test: every STS-B test sentence is removed first."""
    sys.path.insert(0, str(ROOT / "bench"))
    import nestvec
    import realdata
    from nestvec.train import refine

    corpus, _ = realdata.collect(250_000)
    vectors = np.load(realdata.CACHE / "real-250000.npy", mmap_mode="r")
    with STS.open(encoding="utf-8") as fh:
        held_out = {s for row in csv.reader(fh) for s in row[:2]}
    keep = [i for i, t in enumerate(corpus[:count]) if t not in held_out]
    report = refine(model, [corpus[i] for i in keep], output, targets=np.asarray(vectors[keep]), epochs=epochs)
    print("refined", report, flush=True)
    return nestvec.load_encoder(output), report.seconds


def unset_parallelism(encode: Callable[[list[str]], np.ndarray]) -> Embed:
    """Model2Vec sets TOKENIZERS_PARALLELISM=false process-wide when it encodes over 10,000 texts
    (it then runs its own threads); the tokenizers library reads that variable on every call, so
    without this the other models timed in the same process would tokenize on one thread
    (measured: 44k instead of 66k sentences/s for nestvec's static model)."""

    def embed(texts: list[str]) -> np.ndarray:
        os.environ.pop("TOKENIZERS_PARALLELISM", None)
        return encode(texts)

    return embed


def corpora() -> dict[str, list[str]]:
    with STS.open(encoding="utf-8") as fh:
        sentences = list(dict.fromkeys(s for row in csv.reader(fh) for s in row[:2]))
    abstracts = [f"{p['title']}\n{p['text']}" for p in map(json.loads, PAPERS.open(encoding="utf-8"))]
    return {"sts_sentences": sentences, "demo_abstracts": abstracts}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dims", type=int, default=256)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--refine-texts", type=int, default=250_000)
    parser.add_argument("--refine-epochs", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "static.json")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    os.environ.setdefault("RAYON_NUM_THREADS", str(args.threads))
    from model2vec.distill import distill as m2v_distill

    import nestvec
    from nestvec.encoders import resolve_model
    from nestvec.train import distill

    tmp = Path(tempfile.mkdtemp(prefix="nestvec-static-"))
    start = time.perf_counter()
    ours = nestvec.load_encoder(distill("minilm", tmp / "nestvec", dims=args.dims).path)
    ours_s = time.perf_counter() - start
    start = time.perf_counter()
    theirs = m2v_distill(str(resolve_model("minilm")[1]), pca_dims=args.dims)
    theirs_s = time.perf_counter() - start
    teacher = nestvec.load_encoder("minilm")
    refined, refined_s = refine_on_real_text(tmp / "nestvec", tmp / "refined", args.refine_texts, args.refine_epochs)
    models: dict[str, tuple[Embed, float | None]] = {
        "nestvec_static": (unset_parallelism(ours.encode), ours_s),
        "nestvec_static_refined": (unset_parallelism(refined.encode), refined_s),
        "model2vec": (lambda t: np.asarray(theirs.encode(t), dtype=np.float32), theirs_s),
        "teacher_minilm": (unset_parallelism(lambda t: teacher.encode(t, batch_size=64, progress=False)), None),
    }
    texts = corpora()
    results: dict = {}
    for name, (embed, seconds) in models.items():
        results[name] = {
            "distill_s": seconds,
            "stsb_test_spearman": sts_spearman(embed),
            "msmarco5k_ndcg10": msmarco_ndcg(embed),
        }
    for label, batch in texts.items():
        # Rounds interleave the models, so a slow spell of the machine hits them all alike.
        best: dict[str, float] = {}
        for _ in range(5):
            for name, (embed, _) in models.items():
                if name.startswith("teacher") and name in best:
                    continue  # one pass of the teacher is long enough to time
                repeat = 1 if name.startswith("teacher") else 8
                best[name] = max(best.get(name, 0.0), throughput(embed, batch, rounds=1, repeat=repeat))
        for name, value in best.items():
            results[name][f"{label}_per_s"] = value
    for name in models:
        print(name, {k: round(v, 2) if v is not None else None for k, v in results[name].items()}, flush=True)
    for label in texts:
        key = f"{label}_per_s"
        results[f"{label}_vs_model2vec"] = results["nestvec_static"][key] / results["model2vec"][key]
        results[f"{label}_vs_teacher"] = results["nestvec_static"][key] / results["teacher_minilm"][key]
    results["setup"] = {
        "dims": args.dims,
        "threads": args.threads,
        "machine": platform.machine(),
        "python": platform.python_version(),
        "command": "python bench/static.py " + " ".join(sys.argv[1:]),
    }
    print({k: round(v, 2) for k, v in results.items() if k.endswith(("_vs_model2vec", "_vs_teacher"))})
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print("saved", args.out)


if __name__ == "__main__":
    main()
