"""HNSW rows renumbered by cluster (index/layout.py): the same answers, labels still found by row and
row by label, the float vectors moved with their rows, and collections that reorder on compaction
and on checkpoints of a grown index, then reopen (mapped or copied) into the same layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import nestvec
from nestvec.index.labels import LabelTable
from nestvec.index.spec import IndexSpec
from nestvec.index.vector_index import VectorIndex
from nestvec.store import check, live_index


def unit(n: int, seed: int, dim: int = 384) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    x[:, : dim // 8] += 2.0 * np.random.default_rng(seed + 100).normal(size=(n, 1)).astype(np.float32)  # some structure
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def answers(index: VectorIndex, queries: np.ndarray, k: int = 10) -> list[list[tuple[int, float]]]:
    return [list(zip(r.labels.tolist(), np.round(r.scores, 5).tolist(), strict=True)) for r in index.search(queries, k)]


def test_a_permuted_label_table_finds_rows_in_label_order_and_takes_later_labels():
    table = LabelTable()
    table.append(np.array([3, 5, 8, 13, 21]))
    table.kill(np.array([8]))
    table.permute(np.array([4, 2, 0, 3, 1]))
    assert table.labels.tolist() == [21, 8, 3, 13, 5] and table.alive.tolist() == [True, False, True, True, True]
    assert table.positions(np.array([21, 3, 5, 99, 8])).tolist() == [2, 4, 0]  # labels 3, 5, 21; 8 is dead
    with pytest.raises(nestvec.errors.InputError, match="strictly increasing"):
        table.append(np.array([20]))  # below a label the permuted rows hold
    assert table.append(np.array([34, 55])).tolist() == [5, 6]
    assert table.positions(np.array([55, 13, 34])).tolist() == [3, 5, 6]
    assert table.kill(np.array([13, 55])).tolist() == [3, 6] and table.alive_count == 4
    again = LabelTable(table.labels, table.alive)  # as loaded from a checkpoint
    assert again.reordered_rows == 7 and again.positions(np.array([3, 5, 21, 34])).tolist() == [2, 4, 0, 5]
    assert LabelTable(np.array([1, 2, 4])).reordered_rows == 0


@pytest.mark.parametrize("codes", ["float16", "int8", "float32"])
def test_reordering_renumbers_rows_and_answers_the_same(codes: str):
    vectors, queries = unit(4000, 0, dim=64), unit(30, 1, dim=64)
    index = VectorIndex(IndexSpec.make("hnsw", codes), 64)
    index.add(np.arange(10, 4010, dtype=np.int64), vectors)
    index.remove(np.array([10, 500, 2000]))
    before, decoded = answers(index, queries), index.decoded(np.arange(10, 4010))
    index.reorder()
    assert index.table.reordered_rows == 4000 and not np.all(np.diff(index.table.labels) > 0)
    assert answers(index, queries) == before and np.array_equal(index.decoded(np.arange(10, 4010)), decoded)
    index.add(np.array([5000, 5001]), queries[:2])
    index.remove(np.array([11, 5001]))
    found = answers(index, queries[:3], k=3)
    assert found[0][0][0] == 5000 and all(label not in (11, 5001, 10) for hits in found for label, _ in hits)


def test_compaction_and_checkpoints_of_a_grown_collection_reorder_and_reopen_alike(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(live_index, "REORDER_FLOOR", 1_000)
    vectors, queries = unit(3000, 2), unit(20, 3)
    folder = tmp_path / "c"
    with nestvec.Collection.create(folder, "minilm:index=hnsw:codes=float16:rescore=0:bm25=false") as c:
        c.add([{"id": f"d{i}", "text": f"row {i}"} for i in range(1500)], vectors=vectors[:1500])
        assert c._live.loaded.table.reordered_rows == 0  # below the floor until the checkpoint
    with nestvec.Collection.open(folder) as c:  # closing checkpointed 1,500 rows in insertion order: reordered
        assert c._live.loaded.table.reordered_rows == 1500
        c.add([{"id": f"d{i}", "text": f"row {i}"} for i in range(1500, 3000)], vectors=vectors[1500:])
        c.delete(["d7"])
        grown = [[h.id for h in hits] for hits in c.search_vectors(queries, k=5)]
    for mmap in (False, True):
        with nestvec.Collection.open(folder) as c:
            index = c._live.loaded
            assert index.table.reordered_rows == 3000 and index.mapped == mmap
            assert [[h.id for h in hits] for hits in c.search_vectors(queries, k=5)] == grown
            report = check.check_collection(folder, model=False)
            assert report.ok, report
        config = folder / "config.json"
        config.write_text(config.read_text().replace('"mmap": false', '"mmap": true'))
    with nestvec.Collection.open(folder) as c:
        c.compact()
        index = c._live.loaded
        assert index.table.reordered_rows == 2999 and not index.mapped
        rebuilt = [[h.id for h in hits] for hits in c.search_vectors(queries, k=5)]  # a new graph: near, not equal
        assert sum(len(set(a) & set(b)) for a, b in zip(rebuilt, grown, strict=True)) >= 0.9 * 5 * len(grown)
        assert check.check_collection(folder, model=False).ok


def test_a_failed_reorder_costs_no_write_and_a_cut_off_one_drops_the_index(tmp_path: Path, monkeypatch, caplog):
    from nestvec.index import layout

    monkeypatch.setattr(live_index, "REORDER_FLOOR", 500)
    vectors = unit(1600, 4)
    folder = tmp_path / "c"

    def broken(*args: object, **kwargs: object) -> np.ndarray:
        raise MemoryError("no room for the k-means")

    monkeypatch.setattr(layout, "cluster_order", broken)
    with nestvec.Collection.create(folder, "minilm:index=hnsw:codes=float16:rescore=0:bm25=false") as c:
        c.add([{"id": f"d{i}", "text": f"row {i}"} for i in range(800)], vectors=vectors[:800])
    assert "stay in insertion order" in caplog.text
    with nestvec.Collection.open(folder) as c:  # saved all the same, in insertion order
        assert c.count() == 800 and c._live.loaded.table.reordered_rows == 0
    monkeypatch.undo()
    monkeypatch.setattr(live_index, "REORDER_FLOOR", 500)

    def cut_off(self: LabelTable, order: np.ndarray) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(LabelTable, "permute", cut_off)
    with nestvec.Collection.open(folder) as c:
        c.add([{"id": f"d{i}", "text": f"row {i}"} for i in range(800, 1600)], vectors=vectors[800:])
        with pytest.raises(KeyboardInterrupt):  # the graph renumbered, the table not: the index is dropped
            c.checkpoint()
        assert c._live._index is None
        monkeypatch.undo()
        assert c.count() == 1600
        found = c.search_vectors(vectors[[5, 1205]], k=1)
        assert [hits[0].id for hits in found] == ["d5", "d1205"]


KILLED_CHILD = """
import sys, time, numpy as np, nestvec
from pathlib import Path
from nestvec.index import vector_index
from nestvec.store import live_index
live_index.REORDER_FLOOR = 500
folder, ready = Path(sys.argv[1]), Path(sys.argv[2])
def renumber_then_wait(self, found):
    original(self, found)
    ready.write_text("renumbered")  # the graph and table renumbered, the save not begun: killed here
    time.sleep(60)
original = vector_index.VectorIndex.renumber
vector_index.VectorIndex.renumber = renumber_then_wait
x = np.random.default_rng(5).normal(size=(1200, 384)).astype(np.float32)
x /= np.linalg.norm(x, axis=1, keepdims=True)
c = nestvec.Collection.open(folder)
c.add([{"id": f"d{i}", "text": f"row {i}"} for i in range(400, 1200)], vectors=x[400:])
c.checkpoint()
"""


def test_killed_while_reordering_loses_nothing(tmp_path: Path) -> None:
    import subprocess
    import sys
    import time

    x = np.random.default_rng(5).normal(size=(1200, 384)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    folder, ready = tmp_path / "c", tmp_path / "ready"
    with nestvec.Collection.create(folder, "minilm:index=hnsw:codes=float16:rescore=0:bm25=false") as c:
        c.add([{"id": f"d{i}", "text": f"row {i}"} for i in range(400)], vectors=x[:400])
    child = subprocess.Popen([sys.executable, "-c", KILLED_CHILD, str(folder), str(ready)])
    try:
        deadline = time.monotonic() + 120
        while not ready.exists() and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert ready.exists(), "the child never reached the reorder"
    finally:
        child.kill()
        child.wait()
    with nestvec.Collection.open(folder) as c:
        assert c.count() == 1200
        assert [hits[0].id for hits in c.search_vectors(x[[3, 999]], k=1)] == ["d3", "d999"]
    assert check.check_collection(folder, model=False).ok
