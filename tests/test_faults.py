"""The fault-injection harness in small: real writer and reader processes SIGKILLed at random points.

The full run (≥ 200 kills over six index settings) is `python reliability/faults.py`; its
figures are in RELIABILITY.md.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from nestvec import Collection
from nestvec.index import checkpoint
from nestvec.index.spec import IndexSpec
from nestvec.index.vector_index import VectorIndex
from reliability.corrupt import run_corruption
from reliability.faults import run_faults, summary


def test_kills_across_settings_lose_nothing_acknowledged(tmp_path: Path) -> None:
    rounds = run_faults(settings=["flat", "rabitq", "hnsw"], kills=9, seed=3, workdir=tmp_path)
    result = summary(rounds)
    assert result["kills"] >= 9 and result["2_writers"]["kills"] >= 2
    assert result["reader_reads"] > 0 and result["check_failures"] == 0
    assert [r for r in rounds if not r.clean] == []


def test_a_checkpoint_cut_short_leaves_the_previous_one_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Found by the harness: a kill between writing the row table and config.json left a table
    that failed its checksum, so the next open rebuilt the whole index."""
    spec = IndexSpec.make("hnsw", "int8")
    rng = np.random.default_rng(0)
    index = VectorIndex(spec, 16)
    index.add(np.arange(300), rng.standard_normal((300, 16)).astype(np.float32))
    index.version = 1
    checkpoint.save(index, tmp_path, generation="g")
    index.add(np.arange(300, 400), rng.standard_normal((100, 16)).astype(np.float32))
    index.version = 2

    def killed(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt  # stands for the SIGKILL: nothing after this point runs

    monkeypatch.setattr(checkpoint, "write_json_atomic", killed)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save(index, tmp_path, generation="g")
    monkeypatch.undo()
    loaded, _ = checkpoint.load(tmp_path, spec, 16)
    assert loaded.version == 1 and len(loaded) == 300
    assert checkpoint.save(index, tmp_path, generation="g")
    assert checkpoint.stale_files(tmp_path, checkpoint.saved_files(tmp_path)) == []
    assert len(checkpoint.load(tmp_path, spec, 16)[0]) == 400


def test_damage_to_any_file_of_a_collection_is_detected_or_harmless(tmp_path: Path) -> None:
    """The corruption harness in small (the full run is `python reliability/corrupt.py`)."""
    cases = run_corruption(
        flips=1, seed=5, workdir=tmp_path, recipes={"hnsw-f16": "minilm:index=hnsw:codes=float16"}, papers=150
    )
    files = {c.file.split("-")[0] for c in cases}
    assert {"config.json", "store.sqlite3", "index/config.json", "index/codes", "index/rows", "index/vectors"} <= files
    assert [c for c in cases if c.outcome == "undetected"] == []
    assert sum(c.outcome == "detected" for c in cases) >= 30


def test_a_write_cut_off_while_indexed_is_not_checkpointed_half_applied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Found by the CLI's Ctrl-C test, once in a few hundred runs: the interrupt fell between adding
    a committed batch's rows to the index and recording its version; closing then checkpointed those
    rows under the older version, and the next open replayed them again and refused."""
    docs = [{"id": f"d{i}", "text": f"document number {i}"} for i in range(30)]
    with Collection.create(tmp_path / "c", model="minilm") as collection:
        collection.add(docs[:10])
        real = VectorIndex.add

        def cut(self: VectorIndex, labels: np.ndarray, vectors: np.ndarray) -> None:
            real(self, labels, vectors)
            raise KeyboardInterrupt  # after the rows went in, before the version is recorded

        monkeypatch.setattr(VectorIndex, "add", cut)
        with pytest.raises(KeyboardInterrupt):
            collection.add(docs[10:20])
        monkeypatch.undo()
    with Collection.open(tmp_path / "c") as collection:
        assert len(collection) == 20  # the store committed the cut-off batch
        collection.add(docs[20:])
        hits = collection.search("document number", k=40)
    assert sorted(h.id for h in hits) == sorted(d["id"] for d in docs)
