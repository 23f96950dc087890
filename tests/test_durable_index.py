"""Saved indexes: reopen identically, replay what they missed, survive corruption, compact."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

import nestvec
from nestvec import Collection
from tests.conftest import ROOT, paper_docs

QUERIES = ["binary codes for fast retrieval", "multilingual sentence embeddings", "graph neural networks"]

WRITER = """
import json, os, sys
from nestvec import Collection, Document
collection = Collection.open(sys.argv[1])
rows = [json.loads(line) for line in open(sys.argv[2], encoding="utf-8")][60:80]
collection.add([Document(r["id"], r["title"] + "\\n" + r["text"], {"title": r["title"]}) for r in rows])
collection.delete(sys.argv[3].split(","))
print(json.dumps([r["id"] for r in rows]), flush=True)
if sys.argv[4] == "crash":
    os._exit(0)  # no close(), so no checkpoint: the next reader must replay the store
collection.close()
"""


def answers(collection: Collection) -> list[list[tuple[str, float]]]:
    return [[(h.id, round(h.score, 5)) for h in hits] for hits in collection.search_batch(QUERIES, k=8)]


def run_writer(path: Path, deleted: list[str], mode: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", WRITER, str(path), str(ROOT / "examples" / "papers.jsonl"), ",".join(deleted), mode],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    import json

    return list(json.loads(done.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize(("index", "codes"), [("flat", "binary"), ("flat", "int8"), ("hnsw", "float16")])
def test_corrupted_index_is_detected_and_rebuilt(
    tmp_path: Path, encoder: nestvec.Encoder, index: str, codes: str
) -> None:
    path = tmp_path / "c"
    with Collection.create(path, model=encoder, index=index, codes=codes) as collection:
        collection.add(paper_docs(60))
        before = answers(collection)
    suffixes = {p.suffix for p in (path / "index").iterdir()} & {".faiss", ".safetensors", ".f32"}
    assert len(suffixes) >= 2  # int8 below 1,000 rows has no codes yet: its rows wait, exact, for training
    for suffix in sorted(suffixes):
        # a rebuild starts a new generation of the vectors file, so look the file up each time
        target = next(p for p in (path / "index").iterdir() if p.suffix == suffix)
        data = bytearray(target.read_bytes())
        data[len(data) // 3] ^= 0x5A
        target.write_bytes(bytes(data))
        with Collection.open(path, model=encoder) as reopened:
            assert answers(reopened) == before if index == "flat" else len(answers(reopened)[0]) == 8
            assert reopened.info().index_status.startswith(f"rebuilt: {target} fails its checksum")
        with Collection.open(path, model=encoder) as again:  # the rebuild was saved
            assert again.info().index_status == "loaded from checkpoint"


@pytest.mark.parametrize("mode", ["crash", "close"])
def test_index_replays_writes_it_did_not_see(tmp_path: Path, encoder: nestvec.Encoder, mode: str) -> None:
    path = tmp_path / "c"
    collection = Collection.create(path, model=encoder, codes="binary")
    collection.add(paper_docs(60))
    assert collection.checkpoint()
    first = collection.search("sentence embeddings", k=3)
    deleted = [first[0].id]
    added = run_writer(path, deleted, mode)  # another process writes while we hold the collection
    hits = collection.search_batch([*QUERIES, "sentence embeddings"], k=80)
    found = {h.id for found in hits for h in found}
    assert deleted[0] not in found and set(added) <= found and collection.count() == 79
    collection.close()
    with Collection.open(path, model=encoder) as reopened:
        assert reopened.info().index_status == "loaded from checkpoint"
        assert answers(reopened) == answers(collection_reader(path, encoder))


def collection_reader(path: Path, encoder: nestvec.Encoder) -> Collection:
    import shutil

    copy = path.with_name("copy")
    shutil.copytree(path, copy)
    shutil.rmtree(copy / "index")  # forces a rebuild from the store alone
    return Collection.open(copy, model=encoder)


def test_compaction_drops_deleted_rows_and_checkpoints_prune_the_log(tmp_path: Path, encoder: nestvec.Encoder) -> None:
    path = tmp_path / "c"
    collection = Collection.create(path, model=encoder, index="hnsw", codes="int8")
    docs = paper_docs(120)
    collection.add(docs)
    collection.delete([d.id for d in docs[:90]])
    collection.upsert(docs[100:110])  # replaced rows become tombstones too
    assert collection.checkpoint()
    removed = sqlite3.connect(path / "store.sqlite3").execute("SELECT COUNT(*) FROM removed").fetchone()[0]
    assert removed == 0  # a durable checkpoint has seen every removal
    report = collection.compact()
    assert report.rows_before == 130 and report.rows_after == 30
    hits = collection.search(QUERIES[0], k=50)
    assert len(hits) == 30 and not {h.id for h in hits} & {d.id for d in docs[:90]}
    collection.close()
    with Collection.open(path, model=encoder) as reopened:
        assert reopened.info().index_status == "loaded from checkpoint" and len(reopened.search(QUERIES[0], k=50)) == 30


def test_upsert_churn_keeps_memory_bounded(tmp_path: Path, encoder: nestvec.Encoder) -> None:
    """Found by the soak: replaced rows stayed in memory until 100,000 changes; a collection under
    upsert churn now rebuilds once its tombstones outnumber its live rows (and 1,000)."""
    with Collection.create(tmp_path / "c", model=encoder) as collection:
        docs = [nestvec.Document(f"d{i}", f"text number {i}") for i in range(50)]
        for _ in range(30):
            collection.upsert(docs)
        index = collection._live.loaded
        assert index.table.dead <= max(1000, index.table.alive_count) and index.table.size <= 1050 + 50
        assert collection.search("text number 7", k=1)[0].id == "d7"
