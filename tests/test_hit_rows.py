"""Hit rows held in memory (store/hit_rows.py): the same rows as the store's, following writes made
through other handles (another process's connection), and dropped with the index they belong to."""

from __future__ import annotations

import itertools

import numpy as np

import nestvec
from nestvec.store.hit_rows import HitRows

RECIPE = "minilm:index=hnsw:bm25=false"


def unit(n: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(n, 384)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def docs(lo: int, hi: int) -> list[dict]:
    return [{"id": f"d{i}", "text": f"row {i}"} for i in range(lo, hi)]


def test_rows_from_memory_equal_the_stores_and_follow_later_writes(tmp_path):
    with nestvec.Collection.create(tmp_path / "c", RECIPE) as c:
        c.add(docs(0, 40), vectors=unit(40, 0))
        store = c._store
        labels = store.all_chunks(384)[0].tolist()
        held = HitRows(store)
        assert held.rows(labels) == store.chunk_rows(labels) and len(labels) == 40
        c.add(docs(40, 50), vectors=unit(10, 1))  # above every label read: read when first asked for
        labels = store.all_chunks(384)[0].tolist()
        assert held.rows(labels) == store.chunk_rows(labels) and len(labels) == 50
        assert held.rows([max(labels) + 100, -3]) == {}  # never written
        gone = labels[0]
        c.delete(["d0"])
        assert held.rows([gone])[gone].doc_id == "d0"  # documented: the search then finds no document
        found = [h.id for h in c.search_vectors(unit(40, 0)[:1], k=3)[0]]
        assert len(found) == 3 and "d0" not in found


def test_searches_see_what_another_handle_writes_and_replaces(tmp_path):
    vectors = unit(60, 2)
    with nestvec.Collection.create(tmp_path / "c", RECIPE) as c:
        c.add(docs(0, 30), vectors=vectors[:30])
    with nestvec.Collection.open(tmp_path / "c") as reader, nestvec.Collection.open(tmp_path / "c") as writer:
        assert reader.search_vectors(vectors[:1], k=1)[0][0].id == "d0"  # reads its rows once
        writer.add(docs(30, 60), vectors=vectors[30:])
        writer.upsert([{"id": "d1", "text": "replaced"}], vectors=vectors[1:2])
        found = [hits[0] for hits in reader.search_vectors(vectors, k=1)]
        assert [h.id for h in found] == [f"d{i}" for i in range(60)]
        assert found[1].text == "replaced" and found[45].text == "row 45"


def test_a_compaction_starts_new_rows_and_answers_alike(tmp_path):
    vectors = unit(80, 3)
    with nestvec.Collection.create(tmp_path / "c", RECIPE) as c:
        c.add(docs(0, 80), vectors=vectors)
        c.delete([f"d{i}" for i in range(0, 80, 2)])
        before = [[(h.id, h.score) for h in hits] for hits in c.search_vectors(vectors, k=5)]
        held = c._searcher._rows
        assert held is not None and held[0]() is c._live.loaded
        c.compact()
        after = [[(h.id, h.score) for h in hits] for hits in c.search_vectors(vectors, k=5)]
        assert c._searcher._rows is not held and c._searcher._rows[0]() is c._live.loaded
        assert [[i for i, _ in hits] for hits in after] == [[i for i, _ in hits] for hits in before]
        assert all(int(i[1:]) % 2 == 1 for hits in after for i, _ in hits)


def test_small_writes_between_searches_add_small_parts_never_a_copy_of_the_table(tmp_path):
    with nestvec.Collection.create(tmp_path / "c", RECIPE) as c:
        c.add(docs(0, 64), vectors=unit(64, 4))
        held = HitRows(c._store)
        for step in range(24):
            c.add(docs(100 + step, 101 + step), vectors=unit(1, 10 + step))
            labels = c._store.all_chunks(384)[0].tolist()
            assert held.rows(labels) == c._store.chunk_rows(labels)
            sizes = [len(part.docs) for part in held._parts]
            assert sizes[0] >= 64 and all(a > 2 * b for a, b in itertools.pairwise(sizes))  # O(log n) parts


def test_rows_without_gaps_hold_no_labels_and_rows_after_deletions_keep_theirs(tmp_path):
    with nestvec.Collection.create(tmp_path / "c", RECIPE) as c:
        c.add(docs(0, 30), vectors=unit(30, 5))
        store = c._store
        dense = HitRows(store)
        labels = store.all_chunks(384)[0].tolist()
        assert dense.rows(labels) == store.chunk_rows(labels)
        assert [part.labels for part in dense._parts] == [None]  # found by subtraction
        c.delete(["d3", "d17"])
        c.add(docs(30, 40), vectors=unit(10, 6))
        gapped = HitRows(store)
        everything = list(range(min(labels) - 2, max(labels) + 20))
        assert gapped.rows(everything) == store.chunk_rows(everything)
        assert gapped._parts[0].labels is not None and len(gapped._parts[0].docs) == 38
        # the two deleted since the read map to their documents, as read
        assert dense.rows(everything) == {**store.chunk_rows(everything), **dense.rows(labels)}
        assert {part.spans.dtype for part in dense._parts} == {np.dtype(np.int32)}


def test_parts_joined_across_a_gap_keep_their_labels():
    from nestvec.store.hit_rows import _columns, _joined

    a = _columns([(1, "a", 0, 0, 4), (2, "b", 0, 0, 4), (3, "c", 0, 0, 4)])
    b = _columns([(5, "e", 0, 0, 4), (6, "f", 1, 2, 9)])
    c = _columns([(7, "g", 0, 0, 4)])
    assert a.labels is None and b.labels is None
    gapped, dense = _joined([a, b]), _joined([b, c])
    assert gapped.labels.tolist() == [1, 2, 3, 5, 6] and dense.labels is None and (dense.first, dense.last) == (5, 7)
    hit, at = gapped.find(np.array([4, 5, 6, 9]))
    assert hit.tolist() == [False, True, True, False] and gapped.docs[at[hit]].tolist() == ["e", "f"]
    hit, at = dense.find(np.array([4, 6, 8]))
    assert hit.tolist() == [False, True, False] and dense.spans[at[hit]].tolist() == [[1, 2, 9]]
