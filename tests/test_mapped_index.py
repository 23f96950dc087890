"""Indexes searched in place from their checkpoint file (`mmap=yes`): the same answers as a private
copy, the codes counted as mapped file pages rather than the process's own memory, a write that
copies first (faiss would abort on a write to a mapped array), and checksums still enforced."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import nestvec
from nestvec.errors import InputError
from nestvec.index.spec import IndexSpec

KINDS = ["flat:codes=float32", "flat:codes=int8", "hnsw:codes=float16", "hnsw:codes=float32"]


def unit(n: int, seed: int) -> np.ndarray:
    x = np.random.default_rng(seed).normal(size=(n, 384)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def docs(lo: int, hi: int) -> list[dict]:
    return [{"id": f"d{i}", "text": f"row {i}"} for i in range(lo, hi)]


def found(c: nestvec.Collection, queries: np.ndarray) -> list[list[tuple[str, float]]]:
    return [[(h.id, round(h.score, 5)) for h in hits] for hits in c.search_vectors(queries, k=5)]


@pytest.mark.parametrize("kind", KINDS)
def test_a_mapped_index_answers_as_a_copy_and_copies_itself_before_a_write(tmp_path: Path, kind: str) -> None:
    vectors, queries = unit(3000, 0), unit(20, 1)
    answers = {}
    for mmap in ("no", "yes"):
        folder = tmp_path / mmap
        with nestvec.Collection.create(folder, f"minilm:index={kind}:mmap={mmap}:bm25=false") as c:
            c.add(docs(0, 2500), vectors=vectors[:2500])
        with nestvec.Collection.open(folder) as c:
            before = found(c, queries)
            index = c._live.loaded
            assert index.mapped == (mmap == "yes") and c._live.status == "loaded from checkpoint"
            c.add(docs(2500, 3000), vectors=vectors[2500:])
            c.delete(["d0"])
            after = found(c, queries)
            assert not c._live.loaded.mapped  # copied into the process's memory by the write
        answers[mmap] = (before, after)
    assert answers["yes"] == answers["no"]
    assert all(hits[0][0] != "d0" for hits in answers["yes"][1])
    with nestvec.Collection.open(tmp_path / "yes") as c:  # the copy was saved; reopened, mapped again
        assert c._live.loaded.mapped and found(c, queries) == answers["no"][1]


CHILD = """
import json, sys, faiss, numpy as np, nestvec  # faiss imported before the count: the index is measured, not the module
def anon():
    return int(dict(l.split(":", 1) for l in open("/proc/self/status"))["RssAnon"].split()[0]) * 1024
c = nestvec.Collection.open(sys.argv[1])
before = anon()
index = c._live.loaded
print(json.dumps({"grew": anon() - before, "mapped": index.mapped, "ram": index.ram_bytes()}))
"""


def test_mapped_codes_are_not_the_processs_own_memory(tmp_path: Path) -> None:
    vectors = unit(20_000, 2)  # 30 MB of float32 codes
    grown = {}
    for mmap in ("no", "yes"):
        with nestvec.Collection.create(tmp_path / mmap, f"minilm:index=flat:mmap={mmap}:bm25=false") as c:
            c.add(docs(0, 20_000), vectors=vectors)
        run = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path / mmap)], capture_output=True, text=True)
        assert run.returncode == 0, run.stderr
        grown[mmap] = json.loads(run.stdout)
    assert grown["no"]["grew"] > 25e6 and not grown["no"]["mapped"] and grown["no"]["ram"] > 25e6
    assert grown["yes"]["grew"] < 5e6 and grown["yes"]["mapped"] and grown["yes"]["ram"] < 1e6


def test_a_damaged_mapped_checkpoint_is_rebuilt_not_searched(tmp_path: Path) -> None:
    vectors = unit(500, 3)
    with nestvec.Collection.create(tmp_path / "c", "minilm:index=hnsw:mmap=yes:bm25=false") as c:
        c.add(docs(0, 500), vectors=vectors)
    codes = next((tmp_path / "c" / "index").glob("codes-*.faiss"))
    data = bytearray(codes.read_bytes())
    data[len(data) // 2] ^= 0xFF
    codes.write_bytes(bytes(data))
    with nestvec.Collection.open(tmp_path / "c") as c:
        assert c.search_vectors(vectors[7:8], k=1)[0][0].id == "d7"
        assert c._live.status.startswith("rebuilt") and "checksum" in c._live.status


@pytest.mark.parametrize(("strategy", "codes"), [("ivf", "float32"), ("flat", "binary"), ("hnsw", "binary")])
def test_mmap_is_refused_where_faiss_cannot_search_in_place(strategy: str, codes: str) -> None:
    with pytest.raises(InputError, match=f"got {strategy} over {codes} codes; set mmap=false"):
        IndexSpec.make(strategy, codes, mmap=True)
    with pytest.raises(InputError, match="set mmap=false"):
        nestvec.Recipe.parse(f"minilm:index={strategy}:codes={codes}:mmap=yes")


def test_a_mapped_reader_maps_a_writers_newer_checkpoint_instead_of_copying(tmp_path: Path) -> None:
    vectors = unit(900, 4)
    folder = tmp_path / "c"
    with nestvec.Collection.create(folder, "minilm:index=hnsw:codes=float16:mmap=yes:bm25=false") as c:
        c.add(docs(0, 300), vectors=vectors[:300])
    with nestvec.Collection.open(folder) as reader:
        assert reader.search_vectors(vectors[:1], k=1)[0][0].id == "d0" and reader._live.loaded.mapped
        with nestvec.Collection.open(folder) as writer:
            writer.add(docs(300, 600), vectors=vectors[300:600])
        # closed, so checkpointed: mapped anew, nothing copied
        assert reader.search_vectors(vectors[450:451], k=1)[0][0].id == "d450" and reader._live.loaded.mapped
        with nestvec.Collection.open(folder) as writer:
            writer.add(docs(600, 900), vectors=vectors[600:])
            # not checkpointed yet: the reader replays the rows, on its own copy
            assert reader.search_vectors(vectors[750:751], k=1)[0][0].id == "d750"
            assert not reader._live.loaded.mapped
