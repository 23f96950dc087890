"""BM25 (FTS5) and hybrid search: exact terms, filters on both sides, atomic sync, bounded growth."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

import nestvec
from nestvec import Collection, Document
from nestvec.cli.main import app
from nestvec.errors import CollectionError, InputError
from nestvec.eval import Setting, evaluate_retrieval
from nestvec.store.fusion import Fusion
from nestvec.store.keywords import KeywordReader, within_budget
from nestvec.store.sparse import SparseSpec
from tests.conftest import ROOT, paper_docs

KEYWORDS = ROOT / "tests" / "data" / "hybrid" / "papers-keywords"


@pytest.fixture(scope="module")
def papers(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("hybrid") / "papers"
    with Collection.create(path) as collection:
        collection.add(paper_docs(200))
    return path


def test_sparse_finds_exact_names_and_hybrid_keeps_them(papers: Path) -> None:
    with Collection.open(papers) as collection:
        sparse = collection.search("SimCSE", k=3, mode="sparse")
        assert "SimCSE" in sparse[0].metadata["title"] and sparse[0].score > 0
        hybrid = collection.search("SimCSE", k=3, mode="hybrid")
        assert any("SimCSE" in h.metadata["title"] for h in hybrid)
        assert collection.search("the of and", k=3, mode="sparse") == []  # stop words only: no keyword match
        with pytest.raises(InputError, match="Unknown search mode 'keyword'"):
            collection.search("SimCSE", mode="keyword")


def test_posting_budget_keeps_the_rarest_terms(papers: Path) -> None:
    assert within_budget(["a", "b", "c"], [50, 5, 20], 30) == ["b", "c"]
    assert within_budget(["a", "b"], [500, 900], 10) == ["a"]  # the rarest term is always kept
    assert within_budget(["a", "b"], None, 10) == ["a", "b"]  # words and index terms did not pair up
    store = papers / "store.sqlite3"
    query = "learning representations SimCSE"  # two words found in most abstracts, one name in few
    tight = KeywordReader(store, SparseSpec(max_postings=40))
    every = KeywordReader(store, SparseSpec(max_postings=None))
    try:
        assert tight.search(query, 10, None, []) == every.search("SimCSE", 10, None, [])
        assert every.search(query, 10, None, []) != every.search("SimCSE", 10, None, [])
        # Stemmed query words (learning -> learn) are counted against the index's stemmed terms.
        assert KeywordReader._postings(tight._connect(), ["learning", "simcse"]) == [
            every.search("learning", 1000, None, []).__len__(),
            every.search("simcse", 1000, None, []).__len__(),
        ]
    finally:
        tight.close()
        every.close()
    with pytest.raises(InputError, match="max_postings must be a positive integer"):
        SparseSpec(max_postings=0)


def test_filters_apply_to_both_sides(papers: Path) -> None:
    with Collection.open(papers) as collection:
        for mode in ("dense", "sparse", "hybrid"):
            hits = collection.search("contrastive learning", k=5, mode=mode, filter={"n": {"$gte": 100}})
            assert hits and all(h.metadata["n"] >= 100 for h in hits), mode
            assert len(hits) == 5


def test_deletes_and_upserts_update_both_indexes(tmp_path: Path, encoder: nestvec.Encoder) -> None:
    collection = Collection.create(tmp_path / "c", model=encoder)
    collection.add(paper_docs(40))
    collection.add([Document("zeta", "The Zorblax-7 protocol compresses vectors.")])
    assert collection.search("Zorblax-7", k=1, mode="sparse")[0].id == "zeta"
    collection.upsert([Document("zeta", "A plain note about sentence embeddings.")])
    assert collection.search("Zorblax", k=5, mode="sparse") == []  # the old text is gone from BM25
    assert collection.search("plain note", k=1, mode="sparse")[0].id == "zeta"
    collection.delete(["zeta"])
    for mode in ("sparse", "hybrid"):
        assert "zeta" not in {h.id for h in collection.search("plain note embeddings", k=41, mode=mode)}
    collection.close()


def test_repeated_upserts_do_not_grow_the_keyword_index(tmp_path: Path, encoder: nestvec.Encoder) -> None:
    collection = Collection.create(tmp_path / "c", model=encoder)
    docs = paper_docs(30)
    collection.add(docs)
    first = [h.id for h in collection.search("transformer attention", k=10, mode="hybrid")]
    sizes = []
    for _ in range(25):
        collection.upsert(docs)
        sizes.append(collection._store.sparse_segments())
    assert max(sizes[10:]) <= 2 * sizes[0] + 10  # FTS5 merges its segments: growth is bounded
    assert [h.id for h in collection.search("transformer attention", k=10, mode="hybrid")] == first
    assert collection.count() == 30
    db = sqlite3.connect(tmp_path / "c" / "store.sqlite3", isolation_level=None)
    db.execute("INSERT INTO documents_fts(documents_fts) VALUES ('integrity-check')")  # raises if out of sync
    db.close()
    collection.close()


def test_collections_without_bm25_say_so(tmp_path: Path, encoder: nestvec.Encoder) -> None:
    with Collection.create(tmp_path / "c", model=encoder, bm25=False) as collection:
        collection.add(paper_docs(5))
        assert len(collection.search("embeddings", k=2)) == 2
        with pytest.raises(CollectionError, match="no BM25 keyword index"):
            collection.search("embeddings", mode="hybrid")
    with pytest.raises(InputError, match="Unknown stemmer 'snowball'"):
        SparseSpec(stemmer="snowball")
    with Collection.create(tmp_path / "plain", model=encoder, bm25=SparseSpec(stemmer="none")) as unstemmed:
        unstemmed.add([Document("a", "Running dogs"), Document("b", "A dog runs")])
        assert [h.id for h in unstemmed.search("running", k=5, mode="sparse")] == ["a"]


def test_fusion_arithmetic_and_validation() -> None:
    dense = [("a", 0.9), ("b", 0.5), ("c", 0.1)]
    sparse = [("c", 12.0), ("a", 2.0)]
    weighted = dict(Fusion(dense_weight=0.5).fuse(dense, sparse))
    assert weighted == pytest.approx({"a": 0.5, "b": 0.25, "c": 0.5})
    rrf = dict(Fusion(method="rrf", dense_weight=0.5, rrf_k=60).fuse(dense, sparse))
    assert rrf["a"] == pytest.approx(0.5 / 61 + 0.5 / 62) and rrf["b"] == pytest.approx(0.5 / 62)
    assert Fusion(dense_weight=1.0).fuse(dense, sparse)[0][0] == "a"
    with pytest.raises(InputError, match="dense_weight must be between 0 and 1"):
        Fusion(dense_weight=1.5)
    with pytest.raises(InputError, match="Unknown fusion method 'sum'"):
        Fusion(method="sum")


def test_cli_search_modes_and_eval_modes(papers: Path) -> None:
    done = runner.invoke(app, ["search", str(papers), "SimCSE", "--mode", "sparse", "-k", "2"])
    assert done.exit_code == 0 and "SimCSE" in done.output.splitlines()[0]
    bad = runner.invoke(app, ["search", str(papers), "SimCSE", "--mode", "bm25"])
    assert bad.exit_code == 1 and "Valid choices: dense, hybrid, sparse" in bad.output


def test_hybrid_beats_dense_on_the_keyword_set() -> None:
    dense = evaluate_retrieval(KEYWORDS, Setting.parse("minilm"), split="test")
    sparse = evaluate_retrieval(KEYWORDS, Setting.parse("minilm:mode=sparse"), split="test")
    hybrid = evaluate_retrieval(KEYWORDS, Setting.parse("minilm:mode=hybrid"), split="test")
    assert sparse.metrics["ndcg@10"] > 90 and hybrid.metrics["ndcg@10"] >= dense.metrics["ndcg@10"] + 5
    assert hybrid.setting == "minilm:mode=hybrid:fusion=weighted"


runner = CliRunner()
