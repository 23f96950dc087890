"""Hash embeddings: trained by distillation from MiniLM on demo sentences, numpy inference."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest

import nestvec
from nestvec.encoders.hashed import HashEncoder, HashSpec
from nestvec.encoders.hashed.lexicon import Lexicon
from nestvec.errors import InputError
from nestvec.train.hashed import train_hashed
from tests.conftest import papers

torch = pytest.importorskip("torch", reason="training hash embeddings needs torch (the transformer extra)")


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, encoder: nestvec.Encoder) -> tuple[Path, list[str], np.ndarray]:
    sentences = [s for p in papers(120) for s in re.split(r"(?<=\.)\s+", p["text"]) if len(s.split()) > 4][:600]
    targets = encoder.encode(sentences, batch_size=64)
    path = tmp_path_factory.mktemp("hash") / "model"
    report = train_hashed(sentences, targets, path, spec=HashSpec(rows=1 << 14), epochs=8, typo_rate=0.3, lexicon=2_000)
    assert report.texts == len(sentences) and np.isfinite(report.final_loss)
    return path, sentences, targets


def table_only(model: Path, to: Path) -> Path:
    """A copy of a hash model without its lexicon: the same table, nothing mended."""
    shutil.copytree(model, to)
    for name in ("lexicon.json", "bigrams.safetensors", "neighbours.safetensors"):
        (to / name).unlink()
    return to


def test_training_moves_texts_towards_their_teacher_vectors(
    trained: tuple[Path, list[str], np.ndarray], tmp_path: Path
) -> None:
    path, sentences, targets = trained
    assert isinstance(nestvec.load_encoder(path), HashEncoder)
    # the table as trained: a lexicon of 600 sentences "mends" their rarer words
    model = nestvec.load_encoder(table_only(path, tmp_path / "bare"))
    assert isinstance(model, HashEncoder) and model.identity.kind == "hashed" and model.dim == 384
    vectors = model.encode(sentences)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    own = (vectors * targets).sum(1)
    shuffled = (vectors * np.roll(targets, 1, axis=0)).sum(1)
    assert own.mean() > 0.6 and own.mean() > shuffled.mean() + 0.2, (own.mean(), shuffled.mean())


def test_lexicon_mends_each_kind_of_one_letter_typo() -> None:
    texts = ["the learning of sentence embeddings is learning to embed"] * 3
    lexicon = Lexicon.from_texts(texts, split=str.split, size=100)
    assert lexicon.counts["learning"] == 6 and lexicon.counts["is"] == 3  # tokens seen 3+ times
    assert Lexicon.from_texts(["once twice twice"], split=str.split, size=10).counts == {}
    for typo in ("learnig", "leearning", "leerning", "lerarning"):  # deletion, insertion, substitution, swap
        assert lexicon.correct(typo) == "learning"
    assert lexicon.correct("Lerning") == "Learning"  # the capital stays
    assert lexicon.correct("zxqv") == "zxqv" and lexicon.correct("embed") == "embed" and lexicon.correct("a") == "a"
    assert lexicon.correct("lerning-rate") == "learning-rate" and lexicon.correct("embeddnigs'") == "embeddings'"


def test_lexicon_chooses_by_the_neighbouring_words() -> None:
    texts = ["a horse is running in the field"] * 300 + ["water from the garden hose"] * 5
    lexicon = Lexicon.from_texts(texts, split=str.split, size=100)
    assert lexicon.mend(["a", "hoose", "is", "running"])[1] == "horse"  # one edit from both words
    assert lexicon.mend(["the", "garden", "hoose"])[2] == "hose"
    assert lexicon.mend(["a", "hose", "is", "running"])[1] == "horse"  # a real word, but not there
    assert lexicon.mend(["the", "garden", "hose"])[2] == "hose"  # where it is kept
    without_context = Lexicon(lexicon.counts)
    assert without_context.mend(["the", "garden", "hoose"])[2] == "horse"  # frequency alone


def test_a_model_with_a_lexicon_embeds_a_typo_as_the_word(
    trained: tuple[Path, list[str], np.ndarray], tmp_path: Path
) -> None:
    with_lexicon = HashEncoder(trained[0])
    assert with_lexicon.lexicon is not None and "learning" in with_lexicon.lexicon.counts
    bare = table_only(trained[0], tmp_path / "bare")
    without = HashEncoder(bare)
    texts = ["contrastive learning of sentence embeddings", "contrastive learnign of sentence embeddings"]
    clean, typo = with_lexicon.encode(texts)
    np.testing.assert_array_equal(clean, typo)
    bare_clean, bare_typo = without.encode(texts)
    np.testing.assert_array_equal(bare_clean, clean)  # same table: only the mending differs
    assert float(bare_clean @ bare_typo) < 0.9999
    assert without.identity.differences(with_lexicon.identity)  # collections tell the two apart
    (bare / "lexicon.json").write_text('{"words": ["a", "b"], "counts": [1]}')
    with pytest.raises(InputError, match="equal-length 'words' and 'counts'"):
        HashEncoder(bare)
    (bare / "lexicon.json").write_text('{"words": ["a", "b"], "counts": [3, 4]}')
    shutil.copy(trained[0] / "bigrams.safetensors", bare)
    with pytest.raises(InputError, match="not saved together"):
        HashEncoder(bare)


def test_typos_and_unseen_words_keep_most_of_the_vector(
    trained: tuple[Path, list[str], np.ndarray], tmp_path: Path
) -> None:
    model = HashEncoder(table_only(trained[0], tmp_path / "bare"))  # what its features keep of a typo
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
