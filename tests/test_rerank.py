"""Rerankers: a small cross-encoder trained here with sentence-transformers, read by nestvec on
torch and ONNX, on collection search, the CLI and the server (POST /rerank in TEI's shape)."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import nestvec
from nestvec.errors import InputError, ModelError
from nestvec.rerank import load_reranker

RELEVANT = [
    "vectors are searched by cosine similarity",
    "an index finds the nearest embeddings",
    "search engines rank documents for a query",
    "embeddings of text are compared fast",
]
OFF_TOPIC = [
    "bake the bread for forty minutes",
    "the soup needs more salt and pepper",
    "whisk the eggs with sugar",
    "roast the vegetables in the oven",
]
QUERIES = ["how do I search vectors", "nearest neighbour search", "ranking documents", "compare text embeddings"]


@pytest.fixture(scope="module")
def cross_encoder(tmp_path_factory: pytest.TempPathFactory, minilm_dir: Path) -> tuple[Path, list[float]]:
    """A 2-layer BERT (MiniLM's tokenizer, random weights) trained as a CrossEncoder for 64 steps:
    relevant pairs 1, off-topic pairs 0. Returns its folder and the training losses."""
    import torch
    from datasets import Dataset
    from sentence_transformers.cross_encoder import CrossEncoder, CrossEncoderTrainer, CrossEncoderTrainingArguments
    from sentence_transformers.cross_encoder.losses import BinaryCrossEntropyLoss
    from transformers import BertConfig, BertForSequenceClassification

    root = tmp_path_factory.mktemp("ce")
    start = root / "start"
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=30522, hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128,
        num_labels=1,
    )  # fmt: skip
    BertForSequenceClassification(config).save_pretrained(start)
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        shutil.copy(minilm_dir / name, start / name)
    rng = random.Random(0)
    rows: dict[str, list[object]] = {"query": [], "text": [], "label": []}
    for _ in range(128):
        query = rng.choice(QUERIES)
        rows["query"] += [query, query]
        rows["text"] += [rng.choice(RELEVANT), rng.choice(OFF_TOPIC)]
        rows["label"] += [1.0, 0.0]
    model = CrossEncoder(str(start), num_labels=1, device="cpu")
    args = CrossEncoderTrainingArguments(
        output_dir=str(root / "checkpoints"), num_train_epochs=4, per_device_train_batch_size=16, learning_rate=1e-3,
        seed=0, report_to="none", save_strategy="no", logging_steps=4, use_cpu=True, disable_tqdm=True,
    )  # fmt: skip
    trainer = CrossEncoderTrainer(
        model=model, args=args, train_dataset=Dataset.from_dict(rows), loss=BinaryCrossEntropyLoss(model)
    )
    trainer.train()
    model.save(str(root / "model"))
    return root / "model", [float(e["loss"]) for e in trainer.state.log_history if "loss" in e]


def test_the_trained_cross_encoder_learned_and_nestvec_scores_as_sentence_transformers(
    cross_encoder: tuple[Path, list[float]],
) -> None:
    from sentence_transformers.cross_encoder import CrossEncoder

    folder, losses = cross_encoder
    assert np.mean(losses[-4:]) < np.mean(losses[:4]) - 0.05  # it learned
    pairs = [(q, t) for q in QUERIES[:2] for t in RELEVANT[:2] + OFF_TOPIC[:2]]
    expected = CrossEncoder(str(folder), device="cpu").predict(pairs)
    for backend in ("torch", "onnx"):
        reranker = load_reranker(folder, backend=backend)
        got = np.concatenate(
            [reranker.score(q, [t for _, t in pairs[i * 4 : i * 4 + 4]]) for i, q in enumerate(QUERIES[:2])]
        )
        np.testing.assert_allclose(got, expected, atol=1e-5)
    ranked = load_reranker(folder).rank(QUERIES[0], OFF_TOPIC[:2] + RELEVANT[:2])
    assert {r.index for r in ranked[:2]} == {2, 3}  # the relevant texts first
    assert [r.score for r in ranked] == sorted((r.score for r in ranked), reverse=True)
    raw = load_reranker(folder).score(QUERIES[0], RELEVANT[:1], raw=True)
    assert raw[0] == pytest.approx(float(np.log(ranked[0].score / (1 - ranked[0].score))), abs=1e-3)


def test_search_reranks_its_candidates(cross_encoder: tuple[Path, list[float]], tmp_path: Path) -> None:
    folder, _ = cross_encoder
    texts = OFF_TOPIC + RELEVANT
    with nestvec.Collection.create(tmp_path / "c") as collection:
        collection.add([nestvec.Document(str(i), t) for i, t in enumerate(texts)])
        dense = collection.search(QUERIES[0], k=8)
        hits = collection.search(QUERIES[0], k=3, rerank=folder, rerank_depth=8)
    scores = load_reranker(folder).score(QUERIES[0], [h.text for h in dense])
    best = [dense[i].id for i in sorted(range(len(dense)), key=lambda i: -scores[i])[:3]]
    assert [h.id for h in hits] == best
    assert [h.score for h in hits] == pytest.approx(sorted(scores, reverse=True)[:3], abs=1e-6)
    with pytest.raises(InputError, match="rerank_depth"):
        nestvec.Collection.open(tmp_path / "c").search("x", rerank=folder, rerank_depth=0)


def test_bad_cross_encoders_are_refused_with_reasons(
    cross_encoder: tuple[Path, list[float]], minilm_dir: Path, tmp_path: Path
) -> None:
    with pytest.raises(ModelError, match="not a cross-encoder"):
        load_reranker(minilm_dir)
    folder, _ = cross_encoder
    three = tmp_path / "three"
    shutil.copytree(folder, three)
    config = json.loads((three / "config.json").read_text())
    config["id2label"] = {"0": "a", "1": "b", "2": "c"}
    (three / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelError, match="3 labels"):
        load_reranker(three)
    with pytest.raises(InputError, match="query is empty"):
        load_reranker(folder).score("  ", RELEVANT)


def test_nestvec_rerank_ranks_a_file(cross_encoder: tuple[Path, list[float]], tmp_path: Path) -> None:
    folder, _ = cross_encoder
    (tmp_path / "in.txt").write_text("\n".join(OFF_TOPIC[:2] + RELEVANT[:2]) + "\n")
    cli = [sys.executable, "-m", "nestvec.cli.main", "rerank", str(folder), QUERIES[0], "in.txt", "--json"]
    done = subprocess.run([*cli, "-k", "2"], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    ranked = json.loads(done.stdout)["ranked"]
    assert {r["text"] for r in ranked} == set(RELEVANT[:2])
    assert {r["index"] for r in ranked} == {2, 3}
    bad = subprocess.run(
        [*cli[:4], "missing-model", QUERIES[0], "in.txt"], cwd=tmp_path, capture_output=True, text=True
    )
    assert bad.returncode == 1 and "was not found" in bad.stderr and "Traceback" not in bad.stderr


def test_the_server_reranks_in_teis_shape(cross_encoder: tuple[Path, list[float]], tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from nestvec.serve import ServeConfig, create_app

    folder, _ = cross_encoder
    (tmp_path / "data").mkdir()
    texts = OFF_TOPIC[:2] + RELEVANT[:2]
    expected = load_reranker(folder).score(QUERIES[0], texts)
    with TestClient(create_app(ServeConfig(data_dir=tmp_path / "data", reranker=str(folder)))) as client:
        got = client.post("/rerank", json={"query": QUERIES[0], "texts": texts, "return_text": True})
        assert got.status_code == 200, got.text
        body = got.json()
        assert [r["index"] for r in body] == [int(i) for i in np.argsort(-expected, kind="stable")]
        assert [r["score"] for r in body] == pytest.approx(sorted(expected, reverse=True), abs=1e-5)
        assert all(r["text"] == texts[r["index"]] for r in body)
        raw = client.post("/rerank", json={"query": QUERIES[0], "texts": texts, "raw_scores": True}).json()
        assert all("text" not in r for r in raw) and min(r["score"] for r in raw) < 0 < max(r["score"] for r in raw)
        long = client.post("/rerank", json={"query": "q", "texts": ["word " * 600], "truncate": False})
        assert long.status_code == 413 and "tokens" in long.text
        assert client.post("/rerank", json={"query": "q", "texts": [" "]}).status_code == 400
        assert client.post("/rerank", json={"query": "q", "texts": []}).status_code == 422
        assert client.post("/collections", json={"name": "c"}).status_code == 201
        docs = [{"id": str(i), "text": t} for i, t in enumerate(texts)]
        assert client.post("/collections/c/documents", json={"documents": docs}).status_code < 300
        hits = client.post("/collections/c/search", json={"query": QUERIES[0], "k": 2, "rerank": True}).json()
        assert [h["id"] for h in hits["hits"]] == [str(i) for i in np.argsort(-expected, kind="stable")[:2]]
    with TestClient(create_app(ServeConfig(data_dir=tmp_path / "data"))) as plain:
        refused = plain.post("/rerank", json={"query": "q", "texts": ["a"]})
        assert refused.status_code == 400 and "--reranker" in refused.text
