"""kill -9 during a large add: every acknowledged document survives, batches are all-or-nothing."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from nestvec import Collection
from tests.conftest import PAPERS, ROOT

WRITER = """
import json, sys
from nestvec import Collection, Document
collection = Collection.open(sys.argv[1])
rows = [json.loads(line) for line in open(sys.argv[2], encoding="utf-8")]
docs = [Document(r["id"], r["title"] + "\\n" + r["text"], {"title": r["title"]}) for r in rows]
print("READY", flush=True)
for start in range(0, len(docs), 8):
    batch = docs[start:start + 8]
    collection.add(batch)
    print("ACK " + " ".join(d.id for d in batch), flush=True)
"""


@pytest.mark.parametrize("delay", [0.0, 0.15, 0.4])
def test_kill_9_mid_ingest_loses_nothing_acknowledged(tmp_path: Path, delay: float) -> None:
    path = tmp_path / "crash"
    Collection.create(path, model="minilm").close()
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path), str(PAPERS)], stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    assert proc.stdout is not None
    acked: list[str] = []
    batches = 0
    deadline = time.monotonic() + 240
    while batches < 4 and time.monotonic() < deadline:
        line = proc.stdout.readline()
        assert line, f"writer exited early with code {proc.wait()}"
        if line.startswith("ACK "):
            acked += line.split()[1:]
            batches += 1
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    acked += [i for line in proc.stdout.read().splitlines() if line.startswith("ACK ") for i in line.split()[1:]]
    assert len(acked) >= 32

    db = sqlite3.connect(path / "store.sqlite3", isolation_level=None)
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    db.execute("INSERT INTO documents_fts(documents_fts) VALUES ('integrity-check')")  # BM25 in step with the text
    db.close()
    collection = Collection.open(path)
    stored = {d.id for d in collection}
    assert set(acked) <= stored
    # The batch in flight is all-or-nothing: no half-written batch after the acknowledged ones.
    assert len(stored) % 8 == 0 and len(stored) - len(acked) in (0, 8)
    assert collection.search("binary embeddings", k=3)
    assert {h.id for h in collection.search("binary embeddings", k=len(stored), mode="sparse")} <= stored
    assert collection.add([{"id": "after-crash", "text": "still writable"}]).added == 1
