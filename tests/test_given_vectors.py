"""Bring your own vectors: documents added with vectors made elsewhere, and search by vector."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import nestvec
from nestvec.errors import InputError
from tests.conftest import paper_docs


def test_given_vectors_store_and_search_as_the_model_would(tmp_path: Path, encoder: nestvec.Encoder) -> None:
    docs = paper_docs(40)
    vectors = encoder.encode([d.text for d in docs])
    with nestvec.Collection.create(tmp_path / "own", model="minilm", dims=128) as own:
        report = own.add(docs, vectors=vectors)
        assert report.added == 40
        with nestvec.Collection.create(tmp_path / "made", model="minilm", dims=128) as made:
            made.add(docs)
            query = "contrastive sentence embeddings"
            by_text = [(h.id, round(h.score, 4)) for h in made.search(query, k=5)]
            assert [(h.id, round(h.score, 4)) for h in own.search(query, k=5)] == by_text
            by_vector = own.search_vectors(encoder.encode([query]), k=5)
            assert [(h.id, round(h.score, 4)) for h in by_vector[0]] == by_text
            filtered = own.search_vectors(encoder.encode([query])[0], k=3, filter={"n": {"$lt": 10}})[0]
            assert len(filtered) == 3 and all(h.metadata["n"] < 10 for h in filtered)


@pytest.mark.parametrize(
    ("vectors", "words"),
    [
        (np.ones((3, 384), dtype=np.float32), "row 0 has norm 19.5959"),
        (np.zeros((3, 256), dtype=np.float32), "must have shape (3, 384)"),
        (np.full((3, 384), np.nan, dtype=np.float32), "row 0 holds NaN"),
        (np.zeros((2, 384), dtype=np.float32), "must have shape (3, 384)"),
        ("not numbers", "must be a matrix of numbers"),
    ],
)
def test_wrong_vectors_are_refused_and_nothing_is_written(
    tmp_path: Path, encoder: nestvec.Encoder, vectors: object, words: str
) -> None:
    with nestvec.Collection.create(tmp_path / "c", model="minilm") as collection:
        with pytest.raises(InputError, match=words.replace("(", r"\(").replace(")", r"\)")):
            collection.add(paper_docs(3), vectors=vectors)
        assert len(collection) == 0
        with pytest.raises(InputError, match="query vectors"):
            collection.search_vectors(np.ones(384), k=1)
