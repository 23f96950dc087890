"""The content-addressed embedding cache: same vectors, no model call on hits, bounded, per recipe."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import nestvec
from nestvec.encoders import CachedEncoder, EmbeddingCache, load_encoder
from tests.conftest import PAPERS, sts_sentences


class _Counting:
    """Wraps a real encoder to count the texts that reach the model."""

    def __init__(self, inner: nestvec.Encoder) -> None:
        self.inner, self.texts = inner, 0
        self.name, self.source, self.dim, self.max_tokens = inner.name, inner.source, inner.dim, inner.max_tokens
        self.identity = inner.identity

    def encode(self, texts: list[str], **options: object) -> np.ndarray:
        self.texts += len(texts)
        return self.inner.encode(texts, **options)  # type: ignore[arg-type]


def test_hits_return_the_model_vectors_without_running_it(encoder: nestvec.Encoder, tmp_path: Path) -> None:
    texts = sts_sentences()[:300]
    texts = texts + texts[:50]  # duplicates inside one call are embedded once
    counting = _Counting(encoder)
    cached = CachedEncoder(counting, EmbeddingCache(tmp_path / "cache"))  # type: ignore[arg-type]
    cold = cached.encode(texts)
    assert counting.texts == 300
    np.testing.assert_allclose(cold, encoder.encode(texts), atol=1e-6)  # batches differ: see test_backends
    warm = cached.encode(texts[::-1])[::-1]
    assert counting.texts == 300  # nothing reached the model
    np.testing.assert_array_equal(warm, cold)
    stats = cached.cache.stats()
    assert stats.entries == 300 and (stats.hits, stats.misses) == (300, 300) and stats.file_bytes > 300 * 384 * 4


def test_entries_survive_reopening_and_are_kept_per_recipe(encoder: nestvec.Encoder, tmp_path: Path) -> None:
    texts = sts_sentences()[:40]
    first = load_encoder("minilm", cache=tmp_path / "cache")
    vectors = first.encode(texts)
    first.cache.close()  # type: ignore[attr-defined]
    again = EmbeddingCache(tmp_path / "cache")
    assert again.stats().entries == 40
    np.testing.assert_array_equal(CachedEncoder(encoder, again).encode(texts), vectors)
    # Another recipe (int8 weights) must not read fp32 vectors: its keys differ.
    int8 = CachedEncoder(load_encoder("minilm", compute="int8"), again)
    assert int8.key(texts[0]) != CachedEncoder(encoder, again).key(texts[0])
    int8.encode(texts)
    assert again.stats().entries == 80


def test_the_cache_is_bounded_and_keeps_what_was_used_last(encoder: nestvec.Encoder, tmp_path: Path) -> None:
    texts = sts_sentences()[:60]
    cache = EmbeddingCache(tmp_path / "cache", max_entries=50)
    cached = CachedEncoder(encoder, cache)
    cached.encode(texts[:30])
    cached.encode(texts[30:40])
    cached.encode(texts[:10])  # touched again: newest
    cached.encode(texts[40:60])
    assert cache.stats().entries == 50
    hits_before = cache.hits
    cached.encode(texts[:10])
    assert cache.hits - hits_before == 10  # the recently used survived eviction
    # Ten of the twenty least recently used (all stored at the same instant) went.
    assert len(cache.get_many([cached.key(t) for t in texts[10:30]], encoder.dim)) == 10


def test_bad_cache_options_are_refused(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(nestvec.InputError, match="is a file"):
        EmbeddingCache(tmp_path / "file")
    with pytest.raises(nestvec.InputError, match="max_entries"):
        EmbeddingCache(tmp_path / "c", max_entries=0)


def test_cli_reindex_with_a_warm_cache_gives_the_same_collection(tmp_path: Path) -> None:
    corpus = tmp_path / "papers.jsonl"
    corpus.write_text("".join(PAPERS.read_text(encoding="utf-8").splitlines(keepends=True)[:80]), encoding="utf-8")

    def build(name: str) -> dict:
        done = subprocess.run(
            [sys.executable, "-m", "nestvec.cli.main", "index", "build", str(corpus), str(tmp_path / name),
             "--cache", str(tmp_path / "cache"), "--no-progress", "--json"],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        return json.loads(done.stdout)

    assert build("cold")["added"] == build("warm")["added"] == 80
    assert EmbeddingCache(tmp_path / "cache").stats().entries == 80
    query = "diffusion models for implicit neural representations"
    with nestvec.Collection.open(tmp_path / "cold") as a, nestvec.Collection.open(tmp_path / "warm") as b:
        assert [h.id for h in a.search(query, k=5)] == [h.id for h in b.search(query, k=5)]
