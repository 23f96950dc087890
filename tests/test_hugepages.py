"""2 MB pages under a loaded index: the arrays named are the index's own, the kernel collapses
them where it offers transparent huge pages, searches answer the same, and collections ask on open."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

import nestvec
from nestvec.index import hugepages
from nestvec.index.spec import IndexSpec
from nestvec.index.vector_index import VectorIndex


def unit(n: int, dim: int, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def built(spec: IndexSpec, rows: np.ndarray) -> VectorIndex:
    index = VectorIndex(spec, rows.shape[1])
    index.add(np.arange(len(rows), dtype=np.int64), rows)
    return index


def thp_offered() -> bool:
    setting = Path("/sys/kernel/mm/transparent_hugepage/enabled")
    return sys.platform.startswith("linux") and setting.exists() and "[never]" not in setting.read_text()


def huge_bytes_at(address: int) -> int:
    """AnonHugePages of the mapping that holds `address`, from /proc/self/smaps."""
    inside = False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        head = line.split()[0]
        if "-" in head and not head.endswith(":"):
            lo, hi = (int(part, 16) for part in head.split("-"))
            inside = lo <= address < hi
        elif inside and head == "AnonHugePages:":
            return int(line.split()[1]) * 1024
    return 0


def test_the_arrays_named_are_the_codes_and_the_graph_links():
    rows = unit(1000, 64)
    flat = built(IndexSpec.make("flat", "float32"), rows)
    assert [size for _, size in hugepages.arrays(flat.faiss)] == [1000 * 64 * 4]
    hnsw = built(IndexSpec.make("hnsw", "int8"), rows)
    links = hnsw.faiss.hnsw.neighbors.byte_size()
    assert sorted(size for _, size in hugepages.arrays(hnsw.faiss)) == sorted([links, 1000 * 64])
    binary = built(IndexSpec.make("hnsw", "binary"), rows)
    assert sorted(size for _, size in hugepages.arrays(binary.faiss)) == sorted([links, 1000 * 64 // 8])
    assert hugepages.advise(flat.faiss) is None  # 250 KB: within the TLB's reach, no thread


@pytest.mark.skipif(not thp_offered(), reason="the kernel offers no transparent huge pages here")
def test_a_large_hnsw_index_is_collapsed_into_huge_pages_and_answers_the_same():
    rows, queries = unit(24_000, 192), unit(50, 192, seed=1)
    index = built(IndexSpec.make("hnsw", "float32"), rows)
    before = index.search(queries, 10)
    start, size = max(hugepages.arrays(index.faiss), key=lambda span: span[1])  # 18 MB of floats
    thread = hugepages.advise(index.faiss)
    assert thread is not None
    hugepages.wait()
    assert not thread.is_alive()
    # Asking splits the mapping at 2 MB boundaries: read the part that holds the middle of the codes.
    assert huge_bytes_at(start + size // 2) >= 4 * hugepages.HUGE_PAGE
    after = index.search(queries, 10)
    for a, b in zip(before, after, strict=True):
        assert a.labels.tolist() == b.labels.tolist() and np.array_equal(a.scores, b.scores)


def test_collections_ask_for_huge_pages_for_the_index_they_open_and_compact(tmp_path, monkeypatch):
    asked: list[object] = []
    monkeypatch.setattr(hugepages, "advise", lambda index: asked.append(index))  # a spy: the collapse is tested above
    rows = unit(300, 384)
    docs = [{"id": f"d{i}", "text": f"row {i}"} for i in range(len(rows))]
    with nestvec.Collection.create(tmp_path / "c", "minilm:index=hnsw:bm25=false") as c:
        c.add(docs, vectors=rows)
    asked.clear()
    with nestvec.Collection.open(tmp_path / "c") as c:
        hits = c.search_vectors(rows[:1], k=1)[0]
        assert [h.id for h in hits] == ["d0"] and asked == [c._live.loaded.faiss]
        c.compact()
        assert len(asked) == 2 and asked[1] is c._live.loaded.faiss
