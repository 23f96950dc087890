"""Collections: add, get, upsert, delete, search, filters, recipes and bad input."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import numpy as np
import pytest

import nestvec
from nestvec import Collection, Document
from nestvec.errors import CollectionError, DuplicateIdError, InputError, RecipeMismatchError
from tests.conftest import model_variant, paper_docs


@pytest.fixture()
def small(tmp_path: Path, encoder: nestvec.Encoder) -> Collection:
    collection = Collection.create(tmp_path / "c", model="minilm")
    collection.add(paper_docs(40))
    return collection


def test_add_get_count_and_reopen(small: Collection, tmp_path: Path) -> None:
    assert small.count() == 40
    doc = paper_docs(1)[0]
    assert small.get([doc.id]) == [doc]
    small.close()
    reopened = Collection.open(tmp_path / "c")
    assert len(reopened) == 40 and reopened.get(doc.id)[0].metadata == {"title": doc.metadata["title"], "n": 0}
    hits = reopened.search(doc.metadata["title"], k=3)
    assert hits[0].id == doc.id and hits[0].score > 0.5


def test_search_scores_are_cosines_in_order(small: Collection, encoder: nestvec.Encoder) -> None:
    hits = small.search("contrastive learning of sentence embeddings", k=5)
    assert len(hits) == 5 and [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    query = encoder.encode(["contrastive learning of sentence embeddings"])[0]
    doc_vectors = encoder.encode([h.text for h in hits])
    np.testing.assert_allclose([h.score for h in hits], doc_vectors @ query, atol=1e-5)


def test_upsert_replaces_and_delete_removes_hits(small: Collection) -> None:
    first = paper_docs(1)[0]
    report = small.upsert([Document(first.id, "A recipe for lemon cake with sugar and butter.", {"kind": "food"})])
    assert (report.added, report.updated) == (0, 1)
    assert small.count() == 40
    assert small.search("lemon cake recipe", k=1)[0].id == first.id
    assert small.delete([first.id, "unknown-id"]) == [first.id]
    assert small.count() == 39 and small.get([first.id]) == []
    assert all(h.id != first.id for h in small.search("lemon cake recipe", k=39))


def test_add_refuses_existing_ids_and_writes_nothing(small: Collection) -> None:
    docs = [Document("new-1", "fresh text"), paper_docs(2)[1]]
    with pytest.raises(DuplicateIdError, match="already in the collection"):
        small.add(docs)
    assert small.get(["new-1"]) == [] and small.count() == 40


def test_duplicate_ids_in_one_batch(small: Collection) -> None:
    with pytest.raises(DuplicateIdError, match="more than once in one batch: 'x'"):
        small.add([Document("x", "one"), Document("y", "two"), Document("x", "three")])
    assert small.count() == 40


@pytest.mark.parametrize("text", ["", "   ", "\n\t "])
def test_empty_texts_are_refused_and_nothing_is_written(small: Collection, text: str) -> None:
    with pytest.raises(InputError, match="empty or whitespace-only"):
        small.add([Document("ok", "a good text"), Document("bad", text)])
    assert small.get(["ok"]) == [] and small.count() == 40


@pytest.mark.parametrize(
    "bad",
    [
        {"text": "no id"},
        {"id": "no-text"},
        {"id": "", "text": "t"},
        {"id": "m", "text": "t", "metadata": {"x": float("nan")}},
        42,
    ],
)
def test_malformed_documents(small: Collection, bad: object) -> None:
    with pytest.raises(InputError):
        small.add([bad])  # type: ignore[list-item]
    assert small.count() == 40


def test_k_must_be_positive_and_query_non_empty(small: Collection) -> None:
    for k in (0, -3):
        with pytest.raises(InputError, match="k must be a positive integer"):
            small.search("x", k=k)
    with pytest.raises(InputError, match="must be a non-empty string"):
        small.search("  ")


def test_empty_collection_search_returns_no_hits(tmp_path: Path, encoder: nestvec.Encoder) -> None:
    collection = Collection.create(tmp_path / "empty", model=encoder)
    assert collection.search("anything", k=5) == []
    assert collection.count() == 0


def test_k_larger_than_collection(small: Collection) -> None:
    assert len(small.search("embeddings", k=1000)) == 40


def test_filters_equality_ranges_and_k_hits(small: Collection) -> None:
    hits = small.search("embeddings", k=5, filter={"n": {"$gte": 10, "$lt": 30}})
    assert len(hits) == 5 and all(10 <= h.metadata["n"] < 30 for h in hits)
    assert [h.metadata["n"] for h in small.search("embeddings", k=3, filter={"n": 7})] == [7]
    either = small.search("x y z", k=10, filter={"$or": [{"n": 1}, {"n": {"$in": [2, 3]}}]})
    assert sorted(h.metadata["n"] for h in either) == [1, 2, 3]
    assert small.search("embeddings", filter={"n": {"$gt": 1000}}) == []
    with pytest.raises(InputError, match=r"Unknown operator '\$gtt'.*Did you mean '\$gt'"):
        small.search("x", filter={"n": {"$gtt": 1}})


def test_non_existent_and_corrupt_collections(tmp_path: Path) -> None:
    with pytest.raises(CollectionError, match="does not exist"):
        Collection.open(tmp_path / "missing")
    (tmp_path / "plain").mkdir()
    with pytest.raises(CollectionError, match=r"config\.json is missing"):
        Collection.open(tmp_path / "plain")
    (tmp_path / "plain" / "config.json").write_text("{garbage")
    with pytest.raises(CollectionError, match="corrupt"):
        Collection.open(tmp_path / "plain")


def test_corrupt_store_file(small: Collection, tmp_path: Path) -> None:
    small.close()
    for suffix in ("", "-wal", "-shm"):
        Path(f"{tmp_path / 'c' / 'store.sqlite3'}{suffix}").unlink(missing_ok=True)
    (tmp_path / "c" / "store.sqlite3").write_bytes(b"this is not a database" * 100)
    with pytest.raises(CollectionError, match="not a readable nestvec store"):
        Collection.open(tmp_path / "c").count()


def test_create_refuses_existing_path_and_leaves_no_debris(small: Collection, tmp_path: Path) -> None:
    with pytest.raises(CollectionError, match="already exists"):
        Collection.create(tmp_path / "c")
    with pytest.raises(InputError, match="Unknown index strategy 'hnws'"):
        Collection.create(tmp_path / "d", index="hnws")
    with pytest.raises(InputError, match=r"store\.sqlite3 is a file, not a folder"):
        Collection.create(tmp_path / "c" / "store.sqlite3" / "e")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c"]


def test_ids_and_metadata_from_numpy_and_integers_are_stored_plainly(small: Collection) -> None:
    first = small.documents(limit=1)[0].id
    assert [d.id for d in small.get(first)] == [first] and small.existing(i for i in [first, "nope"]) == {first}
    with pytest.raises(InputError, match=r"ids are strings; got 1\.5 \(float\)"):
        small.get([1.5])  # type: ignore[list-item]
    small.add([{"id": 7, "text": "an id given as an integer", "metadata": {"n": np.int64(3), "v": np.arange(2)}}])
    assert small.get([7]) == [nestvec.Document("7", "an id given as an integer", {"n": 3, "v": [0, 1]})]
    assert small.delete([7]) == ["7"]
    with pytest.raises(InputError, match="ids must be a list of strings"):
        small.delete(None)  # type: ignore[arg-type]
    assert len(small.search("vector search", k=np.int64(2))) == 2  # type: ignore[arg-type]
    with pytest.raises(InputError, match="k must be a positive integer"):
        small.search("vector search", k=2.0)  # type: ignore[arg-type]


def test_recipe_refuses_a_different_model(small: Collection, tmp_path: Path, minilm_dir: Path) -> None:
    other = model_variant(minilm_dir, tmp_path / "cls-model", pooling={"pooling_mode_cls_token": True})
    with pytest.raises(RecipeMismatchError, match=r"differs in: details"):
        Collection.open(tmp_path / "c", model=str(other))
    recipe = small.info().recipe
    assert recipe["identity"]["weights_sha256"] == nestvec.load_encoder("minilm").identity.weights_sha256
    assert recipe["identity"]["dim"] == 384 and recipe["identity"]["normalized"] is True


def test_long_documents_truncated_by_default_and_counted(tmp_path: Path, encoder: nestvec.Encoder) -> None:
    long_text = " ".join(["binary codes make vector search cheap."] * 200)
    collection = Collection.create(tmp_path / "t", model=encoder)
    report = collection.add([Document("long", long_text), Document("short", "a short text")])
    assert (report.truncated, report.chunks) == (1, 2)


def test_split_returns_each_document_once_with_its_best_chunk(tmp_path: Path, encoder: nestvec.Encoder) -> None:
    filler = " ".join(["Cooking pasta needs salted boiling water and patience."] * 60)
    needle = "Matryoshka embeddings nest smaller vectors inside larger ones."
    collection = Collection.create(tmp_path / "s", model=encoder, long_documents="split", overlap=16)
    report = collection.add([Document("doc", f"{filler} {needle} {filler}"), Document("other", "Gardening in spring.")])
    assert report.truncated == 0 and report.chunks > 3
    hits = collection.search("nested Matryoshka vectors", k=2)
    assert [h.id for h in hits] == ["doc", "other"]
    assert hits[0].chunk is not None and needle in hits[0].chunk.text
    assert hits[0].text.startswith("Cooking pasta")


def test_a_second_handle_sees_writes_from_another(small: Collection, tmp_path: Path) -> None:
    reader = Collection.open(tmp_path / "c")
    assert len(reader.search("pizza dough", k=100)) == 40
    small.add([Document("pizza", "How to knead pizza dough by hand.")])
    assert reader.search("pizza dough", k=1)[0].id == "pizza"
    small.delete(["pizza"])
    assert all(h.id != "pizza" for h in reader.search("pizza dough", k=100))


def test_store_is_wal_and_fully_synchronous(small: Collection, tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / "c" / "store.sqlite3")
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_store_reads_through_a_memory_map_and_searches_alike(small: Collection, tmp_path: Path) -> None:
    """Hits' rows are read through a map (cheaper than a system call per page); a second handle
    that reads page by page answers the same, and a write made through the map's owner shows."""
    assert small._store._db.execute("PRAGMA mmap_size").fetchone()[0] > 0
    reader = Collection.open(tmp_path / "c")
    reader._store._db.execute("PRAGMA mmap_size=0")
    assert [(h.id, h.text, h.metadata) for h in small.search("pizza dough", k=10)] == [
        (h.id, h.text, h.metadata) for h in reader.search("pizza dough", k=10)
    ]
    small.add([Document("pizza", "How to knead pizza dough by hand.", {"tags": {}})])
    assert reader.search("pizza dough", k=1)[0].metadata == {"tags": {}}


def test_hits_are_read_from_their_own_index_not_the_vectors_table(small: Collection, tmp_path: Path) -> None:
    from nestvec.store import sqlite as store_sqlite

    sql = store_sqlite._CHUNK_ROWS.format(small._store._hits_from, "?,?")
    plan = str(small._store._db.execute(f"EXPLAIN QUERY PLAN {sql}", [1, 2]).fetchall())
    assert "COVERING INDEX chunks_hits" in plan
    with closing(sqlite3.connect(tmp_path / "c" / "store.sqlite3")) as db:
        table = {r[0]: (r[1], r[2]) for r in db.execute("SELECT label, doc_id, chunk_no FROM chunks NOT INDEXED")}
    rows = small.chunk_rows([*table, 10**9])
    assert {label: (r.doc_id, r.number) for label, r in rows.items()} == table and len(table) == 40


def test_searches_and_writes_from_many_threads_share_one_collection(tmp_path: Path, encoder: nestvec.Encoder) -> None:
    """Searches run side by side while another thread adds, upserts and deletes; nothing is lost or mixed up."""
    import threading

    docs = paper_docs(120)
    coll = Collection.create(tmp_path / "shared", model=encoder)
    coll.add(docs[:40])
    errors: list[BaseException] = []
    done = threading.Event()

    def searcher() -> None:
        try:
            while not done.is_set():
                for hit in coll.search(docs[3].text[:200], k=5, mode="hybrid"):
                    assert hit.text == next(d.text for d in docs if d.id == hit.id) or hit.text == "replaced"
        except BaseException as exc:  # reported below, so a failure in a thread fails the test
            errors.append(exc)

    threads = [threading.Thread(target=searcher) for _ in range(4)]
    for t in threads:
        t.start()
    for start in range(40, 120, 20):
        coll.add(docs[start : start + 20], batch_size=10)
    coll.upsert([nestvec.Document(docs[5].id, "replaced", {})])
    coll.delete([d.id for d in docs[100:]])
    done.set()
    for t in threads:
        t.join()
    assert not errors, errors
    assert coll.count() == 100 and coll.get([docs[5].id])[0].text == "replaced"
    assert coll.search(docs[3].text[:200], k=1)[0].id == docs[3].id
    coll.close()
    with Collection.open(tmp_path / "shared") as again:
        assert again.count() == 100 and not again.get([docs[110].id])


def test_searches_run_side_by_side(small: Collection, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each search once took the write lock to check for new writes, so it waited for every search
    in flight to end: a server's concurrent searches on one collection ran one at a time."""
    import threading

    from nestvec.store.searcher import Searcher

    both_inside = threading.Barrier(2, timeout=20)
    real = Searcher.search

    def meet(self: Searcher, *args: object, **kwargs: object) -> object:
        both_inside.wait()  # raises BrokenBarrierError unless the other search gets in meanwhile
        return real(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Searcher, "search", meet)
    vector = small.embed_queries(["binary embeddings"])
    found: list[object] = []
    threads = [threading.Thread(target=lambda: found.append(small.search_vectors(vector, k=2))) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(found) == 2 and not both_inside.broken
