"""Realistic vectors for the search benchmarks: MiniLM embeddings of real texts, held-out queries.

Texts: WordNet glosses (Debian `wordnet-base`), GCIDE dictionary definitions (Debian `dict-gcide`),
the shared data (msmarco-5k passages, STS-B sentences, demo abstracts). 1,000 texts are held out
as queries before anything is embedded, so no query is in the corpus. Embeddings are cached in
bench/.cache. `vectors(n)` augments to n rows by mixing random pairs of real vectors (then
renormalizing), which keeps the neighbourhood structure that uniform random vectors lack.

Usage: python bench/realdata.py [--limit 250000]   (embeds and caches; later runs reuse the cache)
Needs: apt-get install wordnet-base dict-gcide
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import os
import random
import re
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "bench" / ".cache"
SHARED = Path(os.environ.get("NESTVEC_SHARED_DATA", ROOT.parent / "shared" / "data"))
WORDNET = Path("/usr/share/wordnet")
GCIDE = Path("/usr/share/dictd/gcide.dict.dz")
QUERIES = 1000
_B64 = {c: i for i, c in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")}


def wordnet_glosses() -> list[str]:
    out = []
    for part in ("noun", "verb", "adj", "adv"):
        for line in (WORDNET / f"data.{part}").read_text(encoding="latin-1").splitlines():
            if line.startswith("  ") or " | " not in line:
                continue  # license header
            fields, gloss = line.split(" | ", 1)
            word = fields.split()[4].replace("_", " ")
            out.append(f"{word}: {gloss.strip()}")
    return out


def _b64(text: str) -> int:
    value = 0
    for char in text:
        value = value * 64 + _B64[char]
    return value


def gcide_definitions() -> list[str]:
    with gzip.open(GCIDE) as fh:
        data = fh.read().decode("utf-8", "replace")
    out = []
    for line in GCIDE.with_suffix("").with_suffix(".index").read_text(encoding="utf-8").splitlines():
        word, offset, length = line.split("\t")[:3]
        if word.startswith("00-database"):
            continue
        entry = data[_b64(offset) : _b64(offset) + _b64(length)]
        body = entry.split("\n", 1)[1] if "\n" in entry else ""
        for para in re.split(r"\n\s*\n", body):
            text = " ".join(para.split())
            text = re.sub(r"\[[^\]]*\]", "", text).strip()
            if text.startswith(("Syn:", "Note:")) or len(text.split()) < 4:
                continue
            out.append(f"{word}: {text[:600]}")
    return out


def shared_texts() -> list[str]:
    texts = [json.loads(line)["text"] for line in (SHARED / "retrieval" / "msmarco-5k" / "corpus.jsonl").open()]
    texts += [json.loads(line)["text"] for line in (SHARED / "papers.jsonl").open()]
    for split in ("train", "dev", "test"):
        with (SHARED / "sts" / f"stsb-en-{split}.csv").open(encoding="utf-8") as fh:
            texts += [s for row in csv.reader(fh) for s in row[:2]]
    return texts


def pool() -> list[str]:
    """Every distinct text of the three sources (about a million), in a fixed shuffled order."""
    if not WORDNET.is_dir() or not GCIDE.is_file():
        sys.exit("needs Debian packages wordnet-base and dict-gcide: apt-get install wordnet-base dict-gcide")
    texts = list(dict.fromkeys(t for t in wordnet_glosses() + gcide_definitions() + shared_texts() if t.strip()))
    random.Random(0).shuffle(texts)
    return texts


def collect(limit: int) -> tuple[list[str], list[str]]:
    texts = pool()
    return texts[QUERIES : QUERIES + limit], texts[:QUERIES]


def embed(limit: int) -> tuple[np.ndarray, np.ndarray]:
    """(corpus vectors, query vectors), float32 and unit length, cached."""
    corpus_file, query_file = CACHE / f"real-{limit}.npy", CACHE / f"real-{limit}-queries.npy"
    if corpus_file.is_file() and query_file.is_file():
        return np.load(corpus_file), np.load(query_file)
    from nestvec import load_encoder

    corpus, queries = collect(limit)
    CACHE.mkdir(parents=True, exist_ok=True)
    (CACHE / f"real-{limit}-texts.json").write_text(json.dumps({"corpus": corpus, "queries": queries}))
    encoder = load_encoder("minilm")
    start = time.perf_counter()
    query_vectors = encoder.encode(queries, batch_size=64, progress=False)
    corpus_vectors = encoder.encode(corpus, batch_size=64, progress=True)
    print(f"embedded {len(corpus)} + {len(queries)} texts in {time.perf_counter() - start:.0f} s", file=sys.stderr)
    np.save(query_file, query_vectors)
    np.save(corpus_file, corpus_vectors)
    return corpus_vectors, query_vectors


def augment(real: np.ndarray, n: int, *, seed: int = 0) -> np.ndarray:
    """`real` followed by n - len(real) normalized mixes of random pairs of real vectors."""
    if n <= len(real):
        return real[:n]
    rng = np.random.default_rng(seed)
    out = np.empty((n, real.shape[1]), dtype=np.float32)
    out[: len(real)] = real
    for start in range(len(real), n, 100_000):
        stop = min(n, start + 100_000)
        a = real[rng.integers(0, len(real), stop - start)]
        b = real[rng.integers(0, len(real), stop - start)]
        w = rng.uniform(0.5, 0.8, (stop - start, 1)).astype(np.float32)
        mix = w * a + (1 - w) * b
        out[start:stop] = mix / np.linalg.norm(mix, axis=1, keepdims=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=250_000, help="real corpus texts to embed")
    args = parser.parse_args()
    corpus, queries = embed(args.limit)
    print(f"corpus {corpus.shape}, queries {queries.shape}")


if __name__ == "__main__":
    main()
