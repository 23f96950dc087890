"""`layers=L`: the first L transformer layers, pooled as in training, on torch and ONNX Runtime."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import nestvec
from nestvec.encoders import load_encoder
from nestvec.errors import InputError
from nestvec.recipe import Recipe

st = pytest.importorskip("sentence_transformers", reason="the reference is sentence-transformers itself")

TEXTS = ["A man is playing a guitar.", "Binary embeddings keep recall with rescoring.", "Der Hund schläft.", "ok"]


def _cut(model: object, layers: int) -> None:
    inner = model[0].auto_model  # type: ignore[index]
    inner.encoder.layer = inner.encoder.layer[:layers]
    inner.config.num_hidden_layers = layers


@pytest.fixture(scope="module")
def three(tmp_path_factory: pytest.TempPathFactory, minilm_dir: Path) -> Path:
    model = st.SentenceTransformer(str(minilm_dir), device="cpu")
    _cut(model, 3)
    path = tmp_path_factory.mktemp("three") / "minilm-3"
    model.save(str(path))
    return path


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_layers_match_sentence_transformers_cut_model(three: Path, backend: str) -> None:
    reference = st.SentenceTransformer(str(three), device="cpu")
    _cut(reference, 2)
    expected = reference.encode(TEXTS, convert_to_numpy=True, normalize_embeddings=True)
    found = load_encoder(three, backend=backend, layers=2).encode(TEXTS)
    np.testing.assert_allclose(found, expected, atol=2e-5)
    full = load_encoder(three, backend=backend).encode(TEXTS)
    assert np.abs(full - found).max() > 0.05  # the cut is real: other vectors


def test_layers_are_in_the_identity_and_the_full_count_means_none(three: Path) -> None:
    full, cut = load_encoder(three, backend="torch"), load_encoder(three, backend="torch", layers=2)
    assert cut.identity.details["layers"] == 2
    assert "layers" not in full.identity.details
    assert full.identity.differences(cut.identity)
    assert load_encoder(three, backend="torch", layers=3).identity == full.identity
    onnx = load_encoder(three, backend="onnx", layers=2)
    assert onnx.identity == cut.identity  # fp32 backends share an identity, layers included
    with pytest.raises(InputError, match="from 1 to 3"):
        load_encoder(three, backend="torch", layers=4)


def test_collections_and_the_grammar_carry_layers(three: Path, tmp_path: Path) -> None:
    recipe = Recipe.parse(f"{three}:layers=2:dims=128")
    assert recipe.encoder.layers == 2 and Recipe.from_dict(recipe.to_dict()) == recipe
    assert "layers" not in Recipe.parse(str(three)).to_dict()["encoder"]
    col = nestvec.Collection.create(tmp_path / "c", recipe)
    col.add([nestvec.Document(str(i), t) for i, t in enumerate(TEXTS)])
    col.close()
    again = nestvec.Collection.open(tmp_path / "c")
    assert again.search(TEXTS[1], k=1)[0].id == "1"
    saved = json.loads((tmp_path / "c" / "config.json").read_text())
    assert saved["recipe"]["encoder"]["layers"] == 2
    again.close()
    with pytest.raises(nestvec.errors.RecipeMismatchError):
        nestvec.Collection.open(tmp_path / "c", model=load_encoder(three, backend="torch"))


def test_layers_on_a_model_without_layers_is_refused(tmp_path: Path) -> None:
    from nestvec.encoders.hashed import HashSpec, save_hashed

    spec = HashSpec(rows=1 << 10, dim=32)
    table = np.random.default_rng(0).normal(size=(spec.rows, spec.dim)).astype(np.float32)
    model = save_hashed(tmp_path / "hash", spec=spec, table=table, config={"name": "random hash"})
    with pytest.raises(InputError, match="applies to transformer models"):
        load_encoder(model, layers=2)
    with pytest.raises(InputError, match="layers must be"):
        Recipe.parse("minilm:layers=0")


def test_serve_runs_a_cut_model_and_collections_with_layers(three: Path, tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from nestvec.serve import ServeConfig, create_app

    config = ServeConfig(model=str(three), data_dir=tmp_path / "data", layers=2, backend="torch")
    (tmp_path / "data").mkdir()
    expected = load_encoder(three, backend="torch", layers=2).encode(TEXTS)
    with TestClient(create_app(config)) as client:
        body = client.post("/v1/embeddings", json={"input": TEXTS, "model": str(three)}).json()
        np.testing.assert_allclose(np.array([d["embedding"] for d in body["data"]]), expected, atol=1e-5)
        made = client.post("/collections", json={"name": "c", "model": str(three), "layers": 1})
        assert made.status_code == 201, made.text
        docs = [{"id": str(i), "text": t} for i, t in enumerate(TEXTS)]
        assert client.post("/collections/c/documents", json={"documents": docs}).status_code < 300
        hits = client.post("/collections/c/search", json={"query": TEXTS[1], "k": 1}).json()
        assert hits["hits"][0]["id"] == "1"
        bad = client.post("/collections", json={"name": "d", "model": str(three), "layers": 0})
        assert bad.status_code == 422 and "layers" in bad.text
    saved = json.loads((tmp_path / "data" / "c" / "config.json").read_text())
    assert saved["recipe"]["encoder"]["layers"] == 1


def test_eval_compare_takes_layers(three: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from nestvec.cli.main import app
    from tests.conftest import ROOT

    sample = tmp_path / "sample.csv"
    rows = (ROOT / "tests" / "data" / "sts" / "stsb-en-dev-200.csv").read_text(encoding="utf-8").splitlines(True)
    sample.write_text("".join(rows[:120]), encoding="utf-8")
    compare = f"{three},{three}:layers=2:dims=128"
    done = CliRunner().invoke(app, ["eval", "sts", str(sample), "--compare", compare, "--json"])
    assert done.exit_code == 0, done.output
    results = json.loads(done.stdout)["results"]
    assert [r["setting"].split(":", 1)[-1] for r in results[1:]] == ["layers=2:dims=128"]
    assert results[1]["bytes_per_vector"] == 512 and results[0]["metrics"] != results[1]["metrics"]


def test_layers_need_a_layer_count_in_the_config(minilm_dir: Path, tmp_path: Path) -> None:
    from nestvec.errors import ModelError
    from tests.conftest import model_variant

    folder = model_variant(minilm_dir, tmp_path / "no-count")
    config = json.loads((folder / "config.json").read_text())
    del config["num_hidden_layers"]
    (folder / "config.json").unlink()  # a link to the installed model's file: never write through it
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelError, match="no layer count"):  # never the full model under a cut one's name
        load_encoder(folder, backend="torch", layers=2)
