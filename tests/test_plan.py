"""`nestvec plan` and `nestvec compact`: measured settings, Pareto front, --apply without re-embedding."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import nestvec
from nestvec import Collection
from nestvec.cli.main import app
from nestvec.eval import Workload, candidates, measure_all
from nestvec.index.spec import IndexSpec
from nestvec.store.rebuild import rebuild_collection
from tests.conftest import paper_docs

runner = CliRunner()
QUERIES = ["binary quantization for retrieval", "multilingual sentence embeddings", "contrastive learning", "word2vec"]


@pytest.fixture()
def small(tmp_path: Path, encoder: nestvec.Encoder) -> Path:
    path = tmp_path / "small"
    with Collection.create(path, model=encoder) as collection:
        collection.add(paper_docs(150))
    (tmp_path / "queries.txt").write_text("\n".join(QUERIES) + "\n")
    return path


def test_plan_measures_every_setting_and_marks_the_front(small: Path, tmp_path: Path) -> None:
    args = ["plan", str(small), "--queries", str(tmp_path / "queries.txt"), "--dims", "384,128"]
    done = runner.invoke(app, [*args, "--plot", str(tmp_path / "plan.png"), "--json"])
    assert done.exit_code == 0, done.output
    rows = json.loads(done.stdout)["rows"]
    assert len(rows) == 2 * (3 * 2 + 1)  # dims × (codes × strategies + rabitq, which pairs with flat only)
    rabitq = "index=flat:codes=rabitq:rescore=4:dims="
    assert {r["setting"] for r in rows} >= {f"{rabitq}384", f"{rabitq}128"}
    exact = next(r for r in rows if r["setting"] == "index=flat:codes=float32:dims=384")
    assert exact["quality"] == 100.0 and exact["quality_metric"] == "recall@10 vs exact float"
    assert any(r["pareto"] and r["quality"] == 100.0 for r in rows)  # the best quality is never dominated
    assert (tmp_path / "plan.png").stat().st_size > 10_000
    binary = next(r for r in rows if r["setting"] == "index=flat:codes=binary:rescore=4:dims=128")
    assert binary["bytes_per_vector"] < exact["bytes_per_vector"] / 16 and binary["qps"] > 0
    assert all(r["p99_ms"] >= r["p50_ms"] > 0 and r["ram_bytes"] > 0 for r in rows)


def test_plan_with_qrels_reports_ndcg_and_pareto_is_consistent(encoder: nestvec.Encoder) -> None:
    docs = paper_docs(80)
    vectors = encoder.encode([d.text for d in docs])
    queries = encoder.encode([d.text[:80] for d in docs[:10]])
    qrels = {str(i): {docs[i].id: 1} for i in range(10)}
    workload = Workload("papers", vectors, [d.id for d in docs], queries, [str(i) for i in range(10)], qrels)
    rows = measure_all(workload, candidates(384, dims=[384], codes=["float32", "binary"], strategies=["flat"]))
    assert [r.quality_metric for r in rows] == ["ndcg@10", "ndcg@10"] and rows[0].quality > 90
    for row in rows:
        beaten = [
            o
            for o in rows
            if o is not row
            and o.quality >= row.quality
            and o.bytes_per_vector <= row.bytes_per_vector
            and o.qps >= row.qps
        ]
        assert row.pareto == (not beaten)


def test_apply_rebuilds_with_the_chosen_setting_without_losing_documents(small: Path, tmp_path: Path) -> None:
    before = Collection.open(small)
    ids, _ = before.count(), before.close()
    args = ["plan", str(small), "--queries", str(tmp_path / "queries.txt"), "--dims", "384,128"]
    args += ["--codes", "binary", "--strategy", "hnsw", "--apply", "index=hnsw:codes=binary:dims=128:rescore=8"]
    done = runner.invoke(app, args)
    assert done.exit_code == 0, done.output
    with Collection.open(small) as after:
        info = after.info()
        assert info.recipe["vectors"]["dims"] == 128 and info.recipe["index"]["codes"] == "binary"
        assert info.recipe["index"]["rescore"] == 8 and after.count() == ids
        hits = after.search("binary quantization for retrieval", k=3)
        assert len(hits) == 3
        truncated = after.embed_queries(["binary quantization for retrieval"])
        assert truncated.shape == (1, 128)
    bad = runner.invoke(app, ["plan", str(small), "--queries", str(tmp_path / "queries.txt"), "--apply", "99"])
    assert bad.exit_code == 1 and "rows 1 to" in bad.output
    with pytest.raises(nestvec.errors.InputError, match="exceeds the 128 dimensions"):
        rebuild_collection(small, index=IndexSpec(), dims=256)
    with pytest.raises(nestvec.errors.InputError, match="change how the vectors are made"):
        rebuild_collection(small, "whiten=yes")


def test_plan_bad_inputs(small: Path, tmp_path: Path) -> None:
    no_queries = runner.invoke(app, ["plan", str(small)])
    assert no_queries.exit_code == 1 and "needs --queries" in no_queries.output
    neither = runner.invoke(app, ["plan", str(tmp_path)])
    assert neither.exit_code == 1 and "neither a collection" in neither.output
    bad = tmp_path / "q.jsonl"
    bad.write_text('{"id": 1, "text": "ok"}\nnot json\n')
    broken = runner.invoke(app, ["plan", str(small), "--queries", str(bad)])
    assert broken.exit_code == 1 and f"{bad}:2" in broken.output
    wrong = runner.invoke(app, ["plan", str(small), "--queries", str(tmp_path / "queries.txt"), "--codes", "int4"])
    assert wrong.exit_code == 1 and "Unknown code precision 'int4'" in wrong.output


def test_compact_cli_reclaims_deleted_rows(small: Path) -> None:
    with Collection.open(small) as collection:
        collection.delete([d.id for d in paper_docs(100)])
    done = runner.invoke(app, ["compact", str(small), "--json"])
    assert done.exit_code == 0, done.output
    report = json.loads(done.stdout)
    assert report["rows_after"] == 50 and report["rows_before"] == 150
    assert np.isfinite(report["seconds"])
