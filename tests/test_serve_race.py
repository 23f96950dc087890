"""Racing clients on a real server, beside `nestvec add` writing the same collection: no 5xx."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="nestvec serve needs the 'serve' extra")

import nestvec
from reliability.load import run_load
from tests.conftest import ROOT, paper_docs
from tests.serving import serve_process


def test_racing_clients_and_a_cli_writer_see_no_server_error(tmp_path: Path) -> None:
    path = tmp_path / "race"
    with nestvec.Collection.create(path, bm25=True) as collection:
        collection.add(paper_docs(40))
    batch = tmp_path / "more.jsonl"
    batch.write_text(
        "".join(json.dumps({"id": f"cli-{i}", "text": f"added from the command line {i}"}) + "\n" for i in range(300))
    )
    with serve_process([str(path)], log=tmp_path / "server.log") as url:
        writer = subprocess.Popen(
            [sys.executable, "-m", "nestvec.cli.main", "add", str(path), str(batch), "--batch-size", "10"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        tally = run_load(url, collection="race", clients=6, seconds=12, seed=1)
        _, err = writer.communicate(timeout=120)
    assert writer.returncode == 0, err
    assert tally.requests > 100 and tally.transport_errors == []
    assert tally.server_errors == [], tally.server_errors[:3]
    assert {"search", "write", "delete", "get", "embed"} <= set(tally.by_kind)
    report = nestvec.check_collection(path, model=False)
    assert report.ok, [f for f in report.findings if not f.ok]
    with nestvec.Collection.open(path) as collection:
        assert len(collection.get([f"cli-{i}" for i in range(300)])) == 300
