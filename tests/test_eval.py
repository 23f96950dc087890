"""Evaluation: published numbers, agreement with pytrec_eval, malformed data, CLI reports."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import numpy as np
import pytest
import pytrec_eval
from typer.testing import CliRunner

from nestvec.cli.main import app
from nestvec.errors import InputError, InputFileError
from nestvec.eval import (
    Setting,
    diagnose,
    evaluate_classification,
    evaluate_clustering,
    evaluate_pairs,
    evaluate_retrieval,
    evaluate_sts,
    metrics,
)
from nestvec.eval.readers import read_beir, read_labelled, read_pair_labels, read_sts
from tests.conftest import SHARED, STS_TEST, sts_sentences

MSMARCO = SHARED / "retrieval" / "msmarco-5k"
TREC = {"ndcg@10": "ndcg_cut_10", "recall@10": "recall_10", "recall@100": "recall_100", "map@100": "map_cut_100"}


def _trec(run: dict, qrels: dict) -> dict:
    evaluator = pytrec_eval.RelevanceEvaluator(qrels, set(TREC.values()) | {"recip_rank"})
    full = evaluator.evaluate(run)
    # MRR@10 = reciprocal rank over the run cut to each query's top 10 (ties ordered as trec_eval does).
    top10 = {q: {d: run[q][d] for d in metrics.ranked(run[q])[:10]} for q in run}
    cut = pytrec_eval.RelevanceEvaluator(qrels, {"recip_rank"}).evaluate(top10)
    return {
        q: {**{ours: full[q][theirs] for ours, theirs in TREC.items()}, "mrr@10": cut[q]["recip_rank"]} for q in full
    }


def _assert_agree(run: dict, qrels: dict) -> None:
    ours = metrics.per_query(run, qrels)
    reference = _trec(run, qrels)
    assert set(reference) == {q for q in qrels if run.get(q)}
    for qid, values in reference.items():
        for name, value in values.items():
            assert ours[qid][name] == pytest.approx(value, abs=1e-6), (qid, name)


def test_minilm_sts_b_test_spearman_is_the_published_82_03() -> None:
    result = evaluate_sts(STS_TEST)
    assert result.examples == 1379 and result.main_metric == "spearman"
    assert result.main == pytest.approx(82.03, abs=0.05)
    assert result.bytes_per_vector == 1536 and result.texts_per_s > 0


@pytest.mark.skipif(not MSMARCO.exists(), reason="../shared/data/retrieval/msmarco-5k is not on this machine")
def test_msmarco_retrieval_agrees_with_pytrec_eval() -> None:
    result = evaluate_retrieval(MSMARCO)
    assert result.examples == 43 and result.run is not None
    qrels = read_beir(MSMARCO).qrels
    _assert_agree(result.run, qrels)
    assert result.metrics["ndcg@10"] == pytest.approx(79.77, abs=0.05)


@pytest.mark.parametrize("seed", range(5))
def test_hand_made_graded_qrels_with_ties_agree_with_pytrec_eval(seed: int) -> None:
    rng = random.Random(seed)
    docs = [f"d{i}" for i in range(40)]
    qrels = {f"q{q}": {d: rng.choice([0, 1, 1, 2, 3]) for d in rng.sample(docs, rng.randint(1, 12))} for q in range(15)}
    # Scores from a tiny set of values, so many documents tie.
    run = {q: {d: rng.choice([0.1, 0.5, 0.5, 0.9]) for d in rng.sample(docs, rng.randint(5, 40))} for q in qrels}
    _assert_agree(run, qrels)


def test_metric_values_by_hand() -> None:
    judged = {"a": 3, "b": 1, "c": 0}
    ranking = ["c", "b", "x", "a"]
    assert metrics.mrr_at(ranking, judged, 10) == 0.5
    assert metrics.recall_at(ranking, judged, 2) == 0.5
    assert metrics.map_at(ranking, judged, 100) == pytest.approx((1 / 2 + 2 / 4) / 2)
    dcg = 1 / np.log2(3) + 3 / np.log2(5)
    assert metrics.ndcg_at(ranking, judged, 10) == pytest.approx(dcg / (3 + 1 / np.log2(3)))


def _write_csv(path: Path, rows: list[list[object]], header: list[str] | None = None) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        if header:
            writer.writerow(header)
        writer.writerows(rows)
    return path


def test_pairs_classification_and_clustering_on_real_text(tmp_path: Path) -> None:
    gold = read_sts(STS_TEST)
    rows = [
        [a, b, int(s >= 4)] for a, b, s in zip(gold.texts1, gold.texts2, gold.values, strict=True) if s >= 4 or s <= 1
    ]
    pairs = evaluate_pairs(_write_csv(tmp_path / "pairs.csv", rows[:400], ["s1", "s2", "label"]))
    assert pairs.main_metric == "ap" and pairs.main > 85 and pairs.metrics["best_f1"] > 75
    topics = {
        "sport": ["football match", "tennis final", "marathon runners", "basketball playoffs", "swimming race"],
        "food": ["pasta recipe", "baking bread", "spicy curry", "chocolate cake", "grilled fish"],
        "computing": ["compiler bug", "database index", "GPU kernel", "network protocol", "operating system"],
    }
    texts = [
        [f"A story about the {thing}, part {i}.", label]
        for label, things in topics.items()
        for thing in things
        for i in range(2)
    ]
    classified = evaluate_classification(_write_csv(tmp_path / "topics.csv", texts, ["text", "label"]), folds=5)
    assert classified.main_metric == "accuracy" and classified.main >= 80 and "macro_f1" in classified.metrics
    clustered = evaluate_clustering(tmp_path / "topics.csv")
    assert clustered.main_metric == "v_measure" and clustered.main > 40


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("a,b,3.0\nc,d\n", r"sts\.csv:2: expected at least 3 columns, found 2"),
        ("a,b,3.0\nc,d,7.5\n", r"sts\.csv:2: score 7\.5 is outside 0\.0–5\.0"),
        ("a,b,3.0\nc,d,high\n", r"sts\.csv:2: score 'high' is not a number"),
        ("", r"sts\.csv: the file is empty"),
        ("s1,s2,score\n", r"sts\.csv: the file has a header but no records"),
        ("a,,3.0\n", r"sts\.csv:1: empty text"),
        ("a,b,3.0\n", r"sts\.csv: STS needs at least two pairs with different scores; found 1 pair"),
        ("a,b,3.0\nc,d,3.0\n", r"found 2 pair\(s\), every score 3\.0"),
    ],
)
def test_malformed_sts_files(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "sts.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InputFileError, match=message):
        read_sts(path)


def test_sts_files_as_people_export_them_need_no_column_options(tmp_path: Path) -> None:
    """A header naming its columns (in any order, as MTEB / Hugging Face exports do) and JSON lines
    read the same pairs as the bare three-column CSV."""
    rows = [["A man plays a flute.", "A man plays music.", 3.8], ["A cat sleeps.", "Stocks fell.", 0.2]]
    plain = _write_csv(tmp_path / "plain.csv", rows)
    named = _write_csv(
        tmp_path / "named.csv",
        [[r[2], "x", r[1], r[0]] for r in rows],
        header=["score", "genre", "Sentence2", "sentence1"],
    )
    jsonl = tmp_path / "pairs.jsonl"
    jsonl.write_text("".join(json.dumps({"sentence1": a, "sentence2": b, "score": c}) + "\n" for a, b, c in rows))
    expected = read_sts(plain)
    for path in (named, jsonl):
        found = read_sts(path)
        assert (found.texts1, found.texts2, found.values) == (expected.texts1, expected.texts2, expected.values)
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"sentence1": "a", "sentence2": "b", "score": 1}\n{"sentence1": "a", "score": 2}\n')
    with pytest.raises(InputFileError, match=r"bad\.jsonl:2: field 'sentence2' is missing"):
        read_sts(bad)
    bad.write_text('{"sentence1": "a", "sentence2": ["b"], "score": 1}\n')
    with pytest.raises(InputFileError, match=r"bad\.jsonl:1: field 'sentence2' holds a list"):
        read_sts(bad)


def test_labelled_and_duplicate_pairs_read_from_json_lines(tmp_path: Path) -> None:
    texts = tmp_path / "topics.jsonl"
    texts.write_text('{"label": "sport", "text": "A goal."}\n{"label": "money", "text": "Stocks fell."}\n')
    labelled = read_labelled(texts)
    assert (labelled.texts, labelled.labels) == (["A goal.", "Stocks fell."], ["sport", "money"])
    quora = tmp_path / "quora.jsonl"
    rows = [("How old is Rome?", "What is Rome's age?", True), ("How old is Rome?", "Where is Oslo?", False)]
    quora.write_text(
        "".join(json.dumps({"question1": a, "question2": b, "is_duplicate": c}) + "\n" for a, b, c in rows)
    )
    assert read_pair_labels(quora).values == [1.0, 0.0]


def _beir(tmp_path: Path, qrels: str) -> Path:
    (tmp_path / "qrels").mkdir(parents=True, exist_ok=True)
    (tmp_path / "corpus.jsonl").write_text('{"_id": "d1", "title": "T", "text": "x"}\n{"_id": "d2", "text": "y"}\n')
    (tmp_path / "queries.jsonl").write_text('{"_id": "q1", "text": "query"}\n')
    (tmp_path / "qrels" / "test.tsv").write_text(qrels)
    return tmp_path


@pytest.mark.parametrize(
    ("qrels", "message"),
    [
        ("query-id\tcorpus-id\tscore\nq1\td9\t1\n", r"test\.tsv:2: corpus-id 'd9' is not in corpus\.jsonl"),
        ("q7\td1\t1\n", r"test\.tsv:1: query-id 'q7' is not in queries\.jsonl"),
        ("q1\td1\n", r"test\.tsv:1: expected query-id, corpus-id, score"),
        ("q1\td1\t1\nq1\td2\tvery\n", r"test\.tsv:2: relevance 'very' is not an integer"),
        ("", r"test\.tsv: no relevance judgments"),
        ("q1\td1\t0\nq1\td2\t-1\n", r"test\.tsv: no judgment marks a document relevant"),
    ],
)
def test_malformed_qrels(tmp_path: Path, qrels: str, message: str) -> None:
    with pytest.raises(InputFileError, match=message):
        read_beir(_beir(tmp_path, qrels))


def test_bad_corpus_line_and_settings(tmp_path: Path) -> None:
    folder = _beir(tmp_path, "q1\td1\t1\n")
    (folder / "corpus.jsonl").write_text('{"_id": "d1", "text": "x"}\n{broken\n')
    with pytest.raises(InputFileError, match=r"corpus\.jsonl:2: not valid UTF-8 JSON"):
        read_beir(folder)
    assert Setting.parse("minilm:dims=64") == Setting.make(model="minilm", dims=64)
    with pytest.raises(InputError, match=r"valid: .*dims=N"):
        Setting.parse("minilm:bits=4")


def test_rabitq_codes_are_a_retrieval_setting_and_refused_elsewhere(tmp_path: Path) -> None:
    # 1,200 documents: enough for the RaBitQ codes to be trained and searched, not just scanned.
    texts = sts_sentences()[:1200]
    (tmp_path / "qrels").mkdir()
    with (tmp_path / "corpus.jsonl").open("w") as fh:
        fh.writelines(json.dumps({"_id": f"d{i}", "text": t}) + "\n" for i, t in enumerate(texts))
    queries = {f"q{i}": texts[i] for i in range(0, 1200, 60)}
    lines = (json.dumps({"_id": q, "text": t}) + "\n" for q, t in queries.items())
    (tmp_path / "queries.jsonl").write_text("".join(lines))
    (tmp_path / "qrels" / "test.tsv").write_text("".join(f"{q}\td{q[1:]}\t1\n" for q in queries))
    exact = evaluate_retrieval(tmp_path, Setting.parse("minilm"))
    coded = evaluate_retrieval(tmp_path, Setting.parse("minilm:codes=rabitq:rescore=10"))
    assert coded.bytes_per_vector == 48 + 8
    assert coded.metrics["ndcg@10"] == pytest.approx(exact.metrics["ndcg@10"], abs=1.0)
    with pytest.raises(InputError, match="only retrieval settings can use it"):
        evaluate_sts(STS_TEST, Setting.parse("minilm:codes=rabitq"))
    with pytest.raises(InputError, match="rabitq codes work with strategy 'flat' or 'ivf'"):
        Setting.parse("minilm:index=hnsw:codes=rabitq")


def test_diagnostics_exact_on_a_basis_and_sane_on_text(encoder) -> None:  # type: ignore[no-untyped-def]
    basis = np.eye(64, dtype=np.float32)
    stats = diagnose(basis, positives=(basis, basis))
    assert stats.anisotropy == pytest.approx(0.0, abs=1e-12)
    assert stats.effective_rank == pytest.approx(63.0, rel=1e-6)
    assert stats.alignment == 0.0 and stats.norm_mean == 1.0
    assert stats.uniformity == pytest.approx(-4.0, abs=1e-9)  # every pair at squared distance 2
    gold = read_sts(STS_TEST)
    texts = gold.texts1[:300]
    real = diagnose(
        encoder.encode(texts), positives=(encoder.encode(gold.texts1[:50]), encoder.encode(gold.texts2[:50]))
    )
    assert 0 < real.anisotropy < 0.3 and 20 < real.effective_rank < 384 and real.alignment is not None


def test_cli_compare_writes_report_plot_and_json(tmp_path: Path) -> None:
    sample = tmp_path / "sample.csv"
    sample.write_text("".join(STS_TEST.read_text(encoding="utf-8").splitlines(keepends=True)[:200]), encoding="utf-8")
    args = ["eval", "sts", str(sample), "--compare", "minilm,minilm:dims=64", "--plot", str(tmp_path / "p.png")]
    done = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "r.md"), "--json"])
    assert done.exit_code == 0, done.output
    results = json.loads(done.stdout)["results"]
    assert [r["setting"] for r in results] == ["minilm", "minilm:dims=64"]
    assert [r["bytes_per_vector"] for r in results] == [1536, 256]
    assert (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"
    assert "| minilm:dims=64 |" in (tmp_path / "r.md").read_text()
    bad = CliRunner().invoke(app, ["eval", "sts", str(sample), "--score-range", "0,1"])
    assert bad.exit_code == 1 and "outside 0.0–1.0" in bad.output


def test_cli_inspect(tmp_path: Path) -> None:
    from tests.conftest import PAPERS

    done = CliRunner().invoke(app, ["inspect", str(PAPERS), "--limit", "120", "--pairs", str(STS_TEST), "--json"])
    assert done.exit_code == 0, done.output
    stats = json.loads(done.stdout)
    assert stats["vectors"] == 120 and stats["dim"] == 384 and stats["alignment"] > 0
    assert abs(stats["norm_mean"] - 1) < 1e-4
