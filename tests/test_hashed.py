"""Hash embeddings: trained by distillation from MiniLM on demo sentences, numpy inference."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import nestvec
from nestvec.encoders.hashed import HashEncoder, HashSpec
from nestvec.errors import InputError
from nestvec.train.hashed import train_hashed
from tests.conftest import papers

torch = pytest.importorskip("torch", reason="training hash embeddings needs torch (the transformer extra)")


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, encoder: nestvec.Encoder) -> tuple[Path, list[str], np.ndarray]:
    sentences = [s for p in papers(120) for s in re.split(r"(?<=\.)\s+", p["text"]) if len(s.split()) > 4][:600]
    targets = encoder.encode(sentences, batch_size=64)
    path = tmp_path_factory.mktemp("hash") / "model"
    report = train_hashed(sentences, targets, path, spec=HashSpec(rows=1 << 14), epochs=8, typo_rate=0.3)
    assert report.texts == len(sentences) and np.isfinite(report.final_loss)
    return path, sentences, targets


def test_training_moves_texts_towards_their_teacher_vectors(trained: tuple[Path, list[str], np.ndarray]) -> None:
    path, sentences, targets = trained
    model = nestvec.load_encoder(path)
    assert isinstance(model, HashEncoder) and model.identity.kind == "hashed" and model.dim == 384
    vectors = model.encode(sentences)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    own = (vectors * targets).sum(1)
    shuffled = (vectors * np.roll(targets, 1, axis=0)).sum(1)
    assert own.mean() > 0.6 and own.mean() > shuffled.mean() + 0.2, (own.mean(), shuffled.mean())


def test_typos_and_unseen_words_keep_most_of_the_vector(trained: tuple[Path, list[str], np.ndarray]) -> None:
    model = HashEncoder(trained[0])
    clean, typo = model.encode(
        ["contrastive learning of sentence embeddings", "contrastive learnign of sentence embeddings"]
    )
    assert float(clean @ typo) > 0.8
    assert model.encode(["zxqv"]).any() and not model.encode(["   "]).any()  # no vocabulary: every word has features
    assert np.array_equal(model.encode(["a b", "c"])[0], model.encode(["a b"])[0])


def test_bad_settings_are_refused(tmp_path: Path, trained: tuple[Path, list[str], np.ndarray]) -> None:
    with pytest.raises(InputError, match="Unknown hash feature 'lemma'"):
        HashSpec(features=("norm", "lemma"))
    with pytest.raises(InputError, match="one target vector per text"):
        train_hashed(["a", "b"], np.zeros((1, 8), dtype=np.float32), tmp_path / "x")
    with pytest.raises(InputError, match="already exists"):
        train_hashed(["a"], np.ones((1, 8), dtype=np.float32), trained[0])
