"""Clustered batches (`batches="clustered"`): in-batch negatives drawn from the anchor's neighbours."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from nestvec.errors import InputError
from nestvec.train.data import read_training
from nestvec.train.finetune import RECORD_KEY, FinetuneConfig, finetune
from tests.conftest import ROOT

pytest.importorskip("datasets", reason="nestvec train needs the 'train' extra")
pytest.importorskip("sentence_transformers", reason="nestvec train needs the 'train' extra")

TRAIN = ROOT / "tests" / "data" / "sts" / "stsb-en-train-400.csv"


def test_clustered_order_keeps_each_batch_in_one_cluster_and_no_text_twice() -> None:
    from nestvec.train.batches import _without_repeats, clustered_order

    rng = np.random.default_rng(0)
    groups, size, width = 4, 64, 16
    centres = np.eye(width, dtype=np.float32)[:groups] * 10
    vectors = np.concatenate([c + rng.normal(size=(size, width)).astype(np.float32) for c in centres])
    group = np.repeat(np.arange(groups), size)
    texts = [frozenset({f"t{i}"}) for i in range(len(vectors))]
    texts[1] = texts[2] = frozenset({"the same gloss"})  # one group, so k-means puts them side by side
    order = clustered_order(vectors, texts, batch_size=32, seed=3)  # clusters of two batches: four
    assert sorted(order) == list(range(len(vectors)))
    batches = [order[i : i + 32] for i in range(0, len(order), 32)]
    # one group a batch, but for a repeated text, which waits for the next batch
    assert sorted(np.bincount(group[b]).max() for b in batches)[1:] == [32] * (len(batches) - 1)
    repeats = sum(len(set().union(*(texts[i] for i in b))) < len(b) for b in batches)
    assert repeats <= 1  # only in the stream's last batch, where nothing is left to swap in
    same = [frozenset({"a"}), frozenset({"same"}), frozenset({"same"}), frozenset({"b"}), frozenset({"c"})]
    assert _without_repeats([0, 1, 2, 3, 4], same, 2) == [[0, 1], [2, 3], [4]]
    assert clustered_order(vectors, texts, batch_size=32, seed=3) == order  # seeded: a resumed run reads the same
    assert clustered_order(vectors, texts, batch_size=32, seed=4) != order
    odd = clustered_order(vectors[:70], texts[:70], batch_size=16, seed=0)
    assert sorted(odd) == list(range(70))  # four full batches, then the short one


def test_clustered_batches_are_harder_and_train(tiny: Path, tmp_path: Path) -> None:
    texts = tmp_path / "sentences.txt"  # news, captions and forums: topics to cluster
    texts.write_text("".join(row.split(",")[0] + "\n" for row in TRAIN.read_text().splitlines()))
    data = read_training(texts, "text")

    def losses(batches: str) -> list[float]:
        # lr 0: the model stays as it was, so the loss measures only how hard the batches are
        config = FinetuneConfig(
            loss="simcse", epochs=0.32, batch_size=16, learning_rate=0.0, save_steps=4, batches=batches, progress=False
        )  # fmt: skip
        return finetune(tiny, tmp_path / batches, data, config=config).losses

    assert np.mean(losses("clustered")) > 1.3 * np.mean(losses("random"))  # measured: 0.87 against 0.51
    record = json.loads((tmp_path / "clustered" / "config_sentence_transformers.json").read_text())[RECORD_KEY]
    assert record["config"]["batches"] == "clustered"
    config = FinetuneConfig(loss="simcse", max_steps=3, batch_size=16, batches="clustered", progress=False)
    report = finetune(tiny, tmp_path / "trained", data, config=config)
    assert report.steps == 3 and np.isfinite(report.train_loss) and report.train_loss > 0
    with pytest.raises(InputError, match="in-batch negatives"):
        cosent = FinetuneConfig(loss="cosent", batches="clustered")
        finetune(tiny, tmp_path / "x", read_training(TRAIN, "scored"), config=cosent)
    with pytest.raises(InputError, match="Valid choices: clustered, random"):
        finetune(tiny, tmp_path / "y", data, config=FinetuneConfig(loss="simcse", batches="sorted"))
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()
