"""Collections with Matryoshka dims and binary codes: rescored scores are exact, updates stay in sync."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import nestvec
from nestvec import Collection, Document
from nestvec.errors import InputError
from nestvec.index.binary import BinaryIndex
from tests.conftest import paper_docs


def test_binary_index_scores_are_sign_cosines() -> None:
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(50, 20)).astype(np.float32)
    index = BinaryIndex(20)
    index.add(np.arange(50), vectors)
    result = index.search(vectors[3], 5)
    assert result.labels[0] == 3 and result.scores[0] == 1.0
    signs = np.sign(vectors)
    np.testing.assert_allclose(result.scores, signs[result.labels] @ signs[3] / 20, atol=1e-6)
    index.remove(np.array([3]))
    assert 3 not in index.search(vectors[3], 50).labels and len(index) == 49 and index.nbytes == 49 * 3


@pytest.mark.parametrize(("index", "dims", "rescore"), [("binary", None, 4), ("binary", 256, 0), ("flat", 128, None)])
def test_compressed_collections_search_update_and_reopen(
    tmp_path: Path, encoder: nestvec.Encoder, index: str, dims: int | None, rescore: int | None
) -> None:
    path = tmp_path / "c"
    collection = Collection.create(path, model=encoder, index=index, dims=dims, rescore=rescore)
    docs = paper_docs(60)
    collection.add(docs)
    query = "binary codes for fast retrieval"
    hits = collection.search(query, k=5)
    assert len(hits) == 5
    q = encoder.encode([query])[0][: dims or 384]
    exact = encoder.encode([h.text for h in hits])[:, : dims or 384]
    exact_scores = exact @ q / np.linalg.norm(exact, axis=1) / np.linalg.norm(q)
    if index == "flat" or (rescore or 0) > 0:
        np.testing.assert_allclose([h.score for h in hits], exact_scores, atol=1e-5)
    else:
        assert all(abs(h.score * (dims or 384) / 2 - round(h.score * (dims or 384) / 2)) < 1e-4 for h in hits)
    collection.delete([hits[0].id])
    assert hits[0].id not in {h.id for h in collection.search(query, k=59)}
    collection.upsert([Document("new", "Binary codes make fast retrieval cheap and small.")])
    after = collection.search(query, k=5)
    collection.close()
    reopened = Collection.open(path)
    assert reopened.info().recipe["dims"] == dims and reopened.info().recipe["index"] == index
    assert [(h.id, round(h.score, 5)) for h in reopened.search(query, k=5)] == [
        (h.id, round(h.score, 5)) for h in after
    ]


def test_bad_compression_options(tmp_path: Path, encoder: nestvec.Encoder) -> None:
    with pytest.raises(InputError, match="dims must be between 1 and the model's 384"):
        Collection.create(tmp_path / "a", model=encoder, dims=512)
    with pytest.raises(InputError, match="rescore must be ≥ 0"):
        Collection.create(tmp_path / "b", model=encoder, index="binary", rescore=-1)
    assert not list(tmp_path.iterdir())
