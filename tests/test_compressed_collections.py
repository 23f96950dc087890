"""Collections with Matryoshka dims and binary codes: rescored scores are exact, updates stay in sync."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import nestvec
from nestvec import Collection, Document
from nestvec.errors import InputError
from tests.conftest import paper_docs

SETTINGS = [
    ("flat", "binary", None, 4),
    ("flat", "binary", 256, 0),
    ("flat", "float32", 128, None),
    ("hnsw", "int8", None, None),
    ("hnsw", "binary", 128, 10),
    ("ivf", "float16", None, None),
    ("flat", "int8", 256, 0),
    ("ivf", "rabitq", None, 4),
]


@pytest.mark.parametrize(("index", "codes", "dims", "rescore"), SETTINGS)
def test_compressed_collections_search_update_and_reopen(
    tmp_path: Path, encoder: nestvec.Encoder, index: str, codes: str, dims: int | None, rescore: int | None
) -> None:
    path = tmp_path / "c"
    collection = Collection.create(path, model=encoder, index=index, codes=codes, dims=dims, rescore=rescore)
    docs = paper_docs(60)
    collection.add(docs)
    query = "binary codes for fast retrieval"
    hits = collection.search(query, k=5)
    assert len(hits) == 5
    q = encoder.encode([query])[0][: dims or 384]
    exact = encoder.encode([h.text for h in hits])[:, : dims or 384]
    exact_scores = exact @ q / np.linalg.norm(exact, axis=1) / np.linalg.norm(q)
    if codes == "float32" or rescore != 0:
        np.testing.assert_allclose([h.score for h in hits], exact_scores, atol=1e-5)
    elif codes == "binary":
        assert all(abs(h.score * (dims or 384) / 2 - round(h.score * (dims or 384) / 2)) < 1e-4 for h in hits)
    collection.delete([hits[0].id])
    assert hits[0].id not in {h.id for h in collection.search(query, k=59)}
    collection.upsert([Document("new", "Binary codes make fast retrieval cheap and small.")])
    after = collection.search(query, k=5)
    collection.close()
    reopened = Collection.open(path)
    info = reopened.info()
    assert info.recipe["vectors"]["dims"] == dims and info.recipe["index"]["strategy"] == index
    assert info.recipe["index"]["codes"] == codes and info.index_status == "loaded from checkpoint"
    assert info.dim == (dims or 384) and info.model_dim == 384
    wants_data = index == "ivf" or codes in ("int8", "rabitq")  # 60 documents: too few to train such codes
    assert info.codes_trained == "yes" if not wants_data else info.codes_trained.startswith("not yet: exact search")
    assert [(h.id, round(h.score, 5)) for h in reopened.search(query, k=5)] == [
        (h.id, round(h.score, 5)) for h in after
    ]


def test_bad_compression_options(tmp_path: Path, encoder: nestvec.Encoder) -> None:
    with pytest.raises(InputError, match="dims must be between 1 and the model's 384"):
        Collection.create(tmp_path / "a", model=encoder, dims=512)
    with pytest.raises(InputError, match="rescore must be an integer ≥ 0"):
        Collection.create(tmp_path / "b", model=encoder, index="binary", rescore=-1)
    assert not list(tmp_path.iterdir())


def random_hash_model(folder: Path, dim: int) -> Path:
    """A hash encoder with a random table (no training, real files, fast): it stands in for MiniLM
    where IVF lists must train, on thousands of documents MiniLM would take minutes to encode here."""
    from nestvec.encoders.hashed import HashSpec, save_hashed

    spec = HashSpec(rows=1 << 12, dim=dim)
    table = np.random.default_rng(0).normal(size=(spec.rows, spec.dim)).astype(np.float32)
    return save_hashed(folder, spec=spec, table=table, config={"name": "random hash"})


def word_docs(count: int) -> list[Document]:
    rng = np.random.default_rng(1)
    words = [f"w{i}" for i in range(400)]
    return [Document(f"d{i}", " ".join(rng.choice(words, 6))) for i in range(count)]


def test_spilled_projected_ivf_collection_reopens_and_forgets_deletes(tmp_path: Path) -> None:
    from nestvec.index.spec import IndexSpec

    model = random_hash_model(tmp_path / "hash", 128)
    docs = word_docs(12_000)  # enough for the IVF lists to train
    index = IndexSpec.make("ivf", "rabitq", rescore=10, nlist=32, nprobe=4, spill=60, code_dims=64)
    collection = Collection.create(tmp_path / "c", model=str(model), index=index, bm25=False)
    collection.add(docs, batch_size=4_000)
    query = docs[7].text
    hits = collection.search(query, k=10)
    assert hits[0].id == "d7" and len({h.id for h in hits}) == 10
    collection.delete(["d7"])
    after = collection.search(query, k=10)
    assert "d7" not in {h.id for h in after} and len({h.id for h in after}) == 10
    collection.close()
    reopened = Collection.open(tmp_path / "c")
    recipe = reopened.info().recipe["index"]
    assert (recipe["spill"], recipe["code_dims"]) == (60, 64)
    assert reopened.info().index_status == "loaded from checkpoint"
    assert [h.id for h in reopened.search(query, k=10)] == [h.id for h in after]


def test_compacting_a_batch_filled_ivf_collection_sizes_its_lists_for_every_row(tmp_path: Path) -> None:
    # Filled in batches, the lists train on the first ~10,000 rows; compaction must size them for
    # all 24,000 (it replays the rows in batches too).
    from nestvec.index.spec import IndexSpec

    model = random_hash_model(tmp_path / "hash", 64)
    docs = word_docs(24_000)
    index = IndexSpec.make("ivf", "rabitq", rescore=10)
    with Collection.create(tmp_path / "c", model=str(model), index=index, bm25=False) as collection:
        for lo in range(0, len(docs), 4_000):
            collection.add(docs[lo : lo + 4_000])

        def lists() -> int:
            return collection._live.current().lists()

        assert lists() <= index.lists_for(12_000) < index.lists_for(24_000)
        assert collection.info().codes_trained == (
            f"yes, in {lists()} lists made for fewer rows: `nestvec compact` retrains {index.lists_for(24_000)}"
        )
        collection.compact()
        assert lists() == index.lists_for(24_000)
        assert collection.info().codes_trained == "yes"
        assert collection.search(docs[5].text, k=1)[0].id == "d5"
    with Collection.open(tmp_path / "c") as reopened:
        assert reopened.info().index_status == "loaded from checkpoint"
        assert reopened.search(docs[5].text, k=1)[0].id == "d5"
