"""How much SimCSE has to learn from MiniLM in random batches and in batches of one k-means cluster.

Unsupervised SimCSE's loss is in-batch negatives over two dropout views of each text. MiniLM
already tells a text's views from every other text of a random batch, so the loss starts near
zero and the fine-tune barely moves (bench/simcse.py: +0.8 MRR@10). Texts that share a batch with
their nearest neighbours (k-means over the base model's vectors, one cluster a batch) are harder
negatives. This measures the loss both ways on the same train glosses (bench/gloss_data.py), with
MiniLM in train mode (dropout on) and no gradient: the signal a fine-tune would start from.

Usage: python bench/simcse_batches.py [--texts 4096] [--batch-size 32] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gloss_data import write_sets

ROOT = Path(__file__).resolve().parent.parent


def batch_losses(model: Any, texts: list[str], order: list[int], batch_size: int, batches: int) -> list[float]:
    import torch
    from torch.nn import functional as F

    found = []
    for start in range(0, batches * batch_size, batch_size):
        features = model.preprocess([texts[i] for i in order[start : start + batch_size]])
        with torch.no_grad():  # the same tokens twice: dropout alone makes the views differ
            views = [F.normalize(model(dict(features))["sentence_embedding"], dim=-1) for _ in range(2)]
        scores = 20 * views[0] @ views[1].T  # MNRL's scale, as `nestvec train --loss simcse` uses
        found.append(float(F.cross_entropy(scores, torch.arange(len(scores)))))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--texts", type=int, default=4096)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--batches", type=int, default=16)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "simcse-batches.json")
    args = parser.parse_args()
    import faiss
    import torch
    from sentence_transformers import SentenceTransformer

    from nestvec.encoders import resolve_model

    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        texts = write_sets(Path(tmp) / "gloss", seed=0)["train"].read_text(encoding="utf-8").splitlines()
    random.Random(0).shuffle(texts)
    texts = texts[: args.texts]
    model = SentenceTransformer(str(resolve_model("minilm")[1]), device="cpu")
    base = model.encode(texts, normalize_embeddings=True, batch_size=128)
    kmeans = faiss.Kmeans(base.shape[1], len(texts) // args.batch_size, niter=20, seed=0)
    kmeans.train(base)
    clusters = kmeans.index.search(base, 1)[1][:, 0]
    model.train()  # dropout on: the two views differ as in training
    runs = {
        "random": batch_losses(model, texts, list(range(len(texts))), args.batch_size, args.batches),
        "clustered": batch_losses(
            model, texts, np.argsort(clusters, kind="stable").tolist(), args.batch_size, args.batches
        ),
    }
    results = {
        "command": "python " + " ".join([str(Path(__file__).relative_to(ROOT)), *sys.argv[1:]]),
        "texts": len(texts), "clusters": len(texts) // args.batch_size, "batch_size": args.batch_size,
        "mean_loss": {name: float(np.mean(v)) for name, v in runs.items()}, "losses": runs,
    }  # fmt: skip
    print(json.dumps(results["mean_loss"]))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
