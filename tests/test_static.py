"""Static models distilled from MiniLM: folder format, numpy-only inference, quality, storage."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import nestvec
from nestvec.cli.main import app
from nestvec.encoders.static import StaticEncoder
from nestvec.errors import InputError
from nestvec.eval import Setting, evaluate_sts
from nestvec.train import distill
from tests.conftest import STS_TEST, paper_docs

USER_WORDS = ["legionella", "goldfish", "embeddings", "the"]


@pytest.fixture(scope="session")
def static_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The whole MiniLM vocabulary distilled to 256 dims (about 20 s on 2 cores), plus three whole words."""
    path = tmp_path_factory.mktemp("static") / "minilm-static"
    report = distill("minilm", path, dims=256, vocabulary=USER_WORDS)
    # BERT's [unused0-993] are left out; "the" is already a token.
    assert report.vocabulary == 30522 - 994 + 3 and report.dims == 256
    assert 0.9 < report.explained_variance <= 1
    return path


def test_user_vocabulary_words_become_single_tokens(static_model: Path) -> None:
    encoder = StaticEncoder(static_model)
    assert json.loads((static_model / "config.json").read_text())["added_words"] == 3
    tokens = encoder.tokenizer.encode("Legionella, goldfish and EMBEDDINGS", add_special_tokens=False).tokens
    assert {"legionella", "goldfish", "embeddings"} <= set(tokens)
    # Only whole words match: a longer word still goes through the teacher's word pieces.
    assert "goldfish" not in encoder.tokenizer.encode("goldfishes", add_special_tokens=False).tokens
    a, b, c = encoder.encode(["legionella bacteria", "legionnaires disease bacteria", "a goldfish bowl"])
    assert float(a @ b) > float(a @ c)


def test_folder_loads_without_torch(static_model: Path) -> None:
    assert {p.name for p in static_model.iterdir()} == {"config.json", "tokenizer.json", "embeddings.safetensors"}
    config = json.loads((static_model / "config.json").read_text())
    assert config["kind"] == "nestvec.static" and config["teacher"]["kind"] == "transformer"
    code = (
        "import sys, nestvec; e = nestvec.load_encoder(sys.argv[1]); v = e.encode(['a cat', 'vector search']);"
        "print(v.shape, 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code, str(static_model)], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "(2, 256) False"


def test_folder_kinds_name_the_encoder_and_old_names_still_load(static_model: Path, tmp_path: Path) -> None:
    import shutil

    from nestvec.encoders.kinds import kind_of

    assert kind_of(static_model) == nestvec.load_encoder(static_model).identity.kind == "static"
    old = shutil.copytree(static_model, tmp_path / "old")
    config = json.loads((old / "config.json").read_text())
    (old / "config.json").write_text(json.dumps({**config, "kind": "nestvec.static-model"}))  # as nestvec 0.1 wrote
    assert kind_of(old) == "static"
    np.testing.assert_array_equal(
        nestvec.load_encoder(old).encode(["a cat"]), nestvec.load_encoder(static_model).encode(["a cat"])
    )
    odd = shutil.copytree(static_model, tmp_path / "odd")  # a new path: loaded encoders are cached by path
    (odd / "config.json").write_text(json.dumps({**config, "kind": "nestvec.collection"}))
    with pytest.raises(nestvec.ModelError, match=r"Layouts tried: transformer: .*static: .*hashed: .*wordvectors"):
        nestvec.load_encoder(odd)


def test_encoding_is_a_normalized_mean_independent_of_batching(static_model: Path) -> None:
    encoder = nestvec.load_encoder(static_model)
    assert isinstance(encoder, StaticEncoder) and encoder.identity.kind == "static"
    texts = ["A man is playing a guitar.", "", "zzzzqqqq", "Static embeddings are fast. " * 50]
    vectors = encoder.encode(texts)
    assert vectors.shape == (4, 256) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors[[0, 2, 3]], axis=1), 1, atol=1e-5)
    assert not vectors[1].any()  # nothing to average: a zero vector, not NaN
    ids = encoder.tokenizer.encode(texts[0].lower(), add_special_tokens=False).ids
    mean = encoder.table.rows[ids].mean(0)
    np.testing.assert_allclose(vectors[0], mean / np.linalg.norm(mean), atol=1e-6)
    alone = np.stack([encoder.encode([t])[0] for t in texts])
    np.testing.assert_array_equal(alone, vectors)


def test_sts_quality_of_the_distilled_model(static_model: Path) -> None:
    if not STS_TEST.exists():
        pytest.skip(f"{STS_TEST} is missing")
    score = evaluate_sts(STS_TEST, Setting.parse(str(static_model))).main
    assert score > 70, score  # Model2Vec's distillation of the same teacher at 256 dims: 66.1 (bench/static.py)


@pytest.mark.parametrize(("storage", "floor"), [("float16", 0.9999), ("int8", 0.995)])
def test_smaller_tables_keep_the_vectors(static_model: Path, tmp_path: Path, storage: str, floor: float) -> None:
    full = StaticEncoder(static_model)
    small = full.save_as(tmp_path / storage, storage=storage)
    assert (tmp_path / storage / "embeddings.safetensors").stat().st_size < 0.6 * (
        static_model / "embeddings.safetensors"
    ).stat().st_size
    texts = [d.text for d in paper_docs(50)]
    cosines = (full.encode(texts) * small.encode(texts)).sum(1)
    assert cosines.min() > floor, cosines.min()
    assert small.identity.weights_sha256 != full.identity.weights_sha256


def test_collections_search_with_a_static_model(static_model: Path, tmp_path: Path) -> None:
    with nestvec.Collection.create(tmp_path / "c", model=str(static_model)) as collection:
        docs = paper_docs(120)
        collection.add(docs)
        for doc in docs[::20]:  # a document's own opening lines find it first
            assert collection.search(doc.text[:300], k=1)[0].id == doc.id
    with nestvec.Collection.open(tmp_path / "c") as reopened:
        assert reopened.recipe.identity.kind == "static"


def test_distill_refuses_bad_settings(tmp_path: Path, static_model: Path) -> None:
    with pytest.raises(InputError, match="between 1 and the teacher's 384"):
        distill("minilm", tmp_path / "x", dims=999)
    with pytest.raises(InputError, match="already exists"):
        distill("minilm", static_model)
    with pytest.raises(InputError, match="needs a transformer teacher"):
        distill(str(static_model), tmp_path / "y")
    result = CliRunner().invoke(app, ["distill", str(tmp_path / "z"), "--dims", "0"])
    assert result.exit_code != 0
    result = CliRunner().invoke(app, ["distill", str(tmp_path / "z"), "--storage", "int4"])
    assert result.exit_code == 1 and "int4" in result.output


def test_refinement_moves_the_model_towards_the_teacher(static_model: Path, tmp_path: Path) -> None:
    import re

    from nestvec.train import refine
    from tests.conftest import papers

    train = [s for p in papers() for s in re.split(r"(?<=\.)\s+", p["text"]) if len(s.split()) > 4][:900]
    shown = train[:300]  # what refinement optimizes; held-out gains need far more text (bench/static.py)
    teacher = nestvec.load_encoder("minilm")
    report = refine(static_model, train, tmp_path / "refined", epochs=2)
    assert report.texts == 900 and np.isfinite(report.final_loss)
    refined, plain = nestvec.load_encoder(tmp_path / "refined"), nestvec.load_encoder(static_model)
    assert refined.dim == plain.dim == 256

    def agreement(model: nestvec.Encoder) -> float:  # same neighbours as the teacher?
        mine, theirs = model.encode(shown), teacher.encode(shown)
        return float(np.corrcoef((mine @ mine.T).ravel(), (theirs @ theirs.T).ravel())[0, 1])

    assert agreement(refined) > agreement(plain) + 0.02, (agreement(refined), agreement(plain))
    bad = tmp_path / "texts.csv"
    bad.write_text("no text column\n1\n")
    result = CliRunner().invoke(app, ["distill", str(tmp_path / "cli"), "--refine-on", str(bad)])
    assert result.exit_code == 1 and not (tmp_path / "cli").exists()


def test_several_processes_give_the_same_vectors_in_order(static_model: Path) -> None:
    encoder = StaticEncoder(static_model)
    words = ["vector", "search", "binary", "retrieval", "static", "model", "token", "index"]
    texts = [f"{words[i % 8]} {words[(i // 8) % 8]} {i}" for i in range(100_000)]  # the multi-process threshold
    np.testing.assert_array_equal(encoder.encode(texts, processes=2), encoder.encode(texts))
    with pytest.raises(InputError, match="processes"):
        encoder.encode(texts[:2], processes=0)


def test_tokenizer_parallelism_turned_off_process_wide_keeps_vectors_and_order(
    static_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    encoder = StaticEncoder(static_model)
    texts = [d.text for d in paper_docs(300)] + ["", "binary codes"]
    expected = encoder.encode(texts)
    monkeypatch.setenv("TOKENIZERS_PARALLELISM", "false")  # what apps that fork (and Model2Vec) set
    np.testing.assert_array_equal(encoder.encode(texts), expected)
