"""Transformer backends (torch, ONNX Runtime fp32/int8, bf16), token-budget batching, determinism."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import nestvec
from nestvec.encoders import load_encoder
from nestvec.encoders.transformer import tokenize as tokenize_module
from nestvec.encoders.transformer.folder import read_st_folder
from nestvec.encoders.transformer.onnx_backend import OnnxEncoder
from nestvec.encoders.transformer.onnx_export import onnx_file
from nestvec.encoders.transformer.torch_backend import TransformerEncoder
from tests.conftest import paper_docs, sts_sentences

LONG = " ".join(["retrieval augmented generation with dense embeddings"] * 40)


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


@pytest.fixture(scope="module")
def torch_encoder() -> nestvec.Encoder:
    return load_encoder("minilm", backend="torch")


@pytest.fixture(scope="module")
def onnx_encoder() -> nestvec.Encoder:
    return load_encoder("minilm", backend="onnx")


def test_auto_picks_onnx_on_cpu_and_fp32_backends_share_one_identity(
    torch_encoder: nestvec.Encoder, onnx_encoder: nestvec.Encoder
) -> None:
    assert isinstance(load_encoder("minilm"), OnnxEncoder)
    assert isinstance(torch_encoder, TransformerEncoder) and isinstance(onnx_encoder, OnnxEncoder)
    # Same identity: a collection built with one backend opens and searches with the other.
    assert torch_encoder.identity == onnx_encoder.identity
    texts = [*sts_sentences()[:200], LONG]
    a, b = torch_encoder.encode(texts), onnx_encoder.encode(texts)
    assert np.abs(a - b).max() < 1e-5


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_a_text_gets_the_same_vector_whatever_its_batch(backend: str) -> None:
    encoder = load_encoder("minilm", backend=backend)
    texts = [*sts_sentences()[:60], LONG, "x", "  padded with spaces  "]
    probes = [0, 1, 57, len(texts) - 3, len(texts) - 2, len(texts) - 1]
    alone = np.vstack([encoder.encode([texts[i]]) for i in probes])
    for batch_size, budget in [(1, None), (7, None), (64, None), (32, 512), (500, 100_000)]:
        together = encoder.encode(texts, batch_size=batch_size, max_batch_tokens=budget)[probes]
        assert np.abs(together - alone).max() <= 1e-6, (backend, batch_size, budget)
    reversed_order = encoder.encode(texts[::-1], batch_size=16)[::-1][probes]
    assert np.abs(reversed_order - alone).max() <= 1e-6


def test_batches_kept_in_flight_land_in_their_own_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    """On CUDA a few batches are launched before the oldest is collected; the same loop on CPU
    (where the launch is synchronous) must still put every batch's rows where they belong."""
    encoder = load_encoder("minilm", backend="torch")
    texts = [*sts_sentences()[:90], LONG]
    expected = encoder.encode(texts, batch_size=8)
    monkeypatch.setattr(encoder, "in_flight", 3)
    assert np.abs(encoder.encode(texts, batch_size=8) - expected).max() <= 1e-6


def test_batches_respect_the_token_budget_and_cover_every_text(onnx_encoder: nestvec.Encoder) -> None:
    tokenizer = onnx_encoder.tokenizer  # type: ignore[attr-defined]
    texts = [*sts_sentences()[:300], LONG, LONG[:300]]
    seen: list[int] = []
    for batch in tokenizer.batches(texts, 64, max_batch_tokens=1024):
        rows, width = batch.input_ids.shape
        assert rows <= 64 and (rows == 1 or rows * width <= 1024)
        assert batch.attention_mask.sum(axis=1).min() >= tokenize_module.MIN_FILL * width  # padding stays bounded
        seen.extend(batch.positions.tolist())
    assert sorted(seen) == list(range(len(texts)))


def test_a_mixed_micro_batch_is_split_by_length(onnx_encoder: nestvec.Encoder) -> None:
    """A server's batch of unrelated texts is not padded to its longest in one model call."""
    tokenizer = onnx_encoder.tokenizer  # type: ignore[attr-defined]
    texts = ["a b", "a much longer sentence with many more words in it than the first one has", "c d e"]
    widths = sorted(b.input_ids.shape[1] for b in tokenizer.batches(texts, 64))
    assert len(widths) == 2 and widths[0] < widths[1] / 2


def test_chunked_tokenization_keeps_input_order(onnx_encoder: nestvec.Encoder, monkeypatch: pytest.MonkeyPatch) -> None:
    texts = sts_sentences()[:250]
    whole = onnx_encoder.encode(texts)
    # Chunks of 64 texts: tokenized on the helper thread while the model runs the previous chunk.
    monkeypatch.setattr(tokenize_module, "CHUNK", 64)
    chunked = onnx_encoder.encode(texts, batch_size=16)
    assert np.abs(chunked - whole).max() <= 1e-6


def test_onnx_threads_are_set_on_its_own_session() -> None:
    encoder = load_encoder("minilm", backend="onnx", threads=1)
    assert isinstance(encoder, OnnxEncoder)
    assert encoder.session.get_session_options().intra_op_num_threads == 1


def test_onnx_export_is_cached_and_a_corrupted_graph_is_rebuilt(minilm_dir: Path, tmp_path: Path) -> None:
    folder = read_st_folder(minilm_dir)
    path = onnx_file(folder, "fp32")
    entry = tmp_path / "onnx" / path.parent.name
    shutil.copytree(path.parent, entry)
    assert onnx_file(folder, "fp32", cache_dir=tmp_path) == entry / "model.onnx"
    stamp = (entry / "model.onnx").stat().st_mtime_ns
    assert onnx_file(folder, "fp32", cache_dir=tmp_path).stat().st_mtime_ns == stamp  # reused, not re-exported
    with (entry / "model.onnx").open("r+b") as fh:  # a torn write or a bit flip
        fh.seek(1000)
        fh.write(b"\xff" * 64)
    rebuilt = OnnxEncoder(folder, name="minilm", cache_dir=tmp_path)
    assert json.loads((entry / "config.json").read_text())["format"] >= 1
    texts = sts_sentences()[:20]
    assert np.abs(rebuilt.encode(texts) - load_encoder("minilm", backend="torch").encode(texts)).max() < 1e-5
    assert not [p for p in (tmp_path / "onnx").iterdir() if p.name.startswith(".")]  # no half-built folders


def test_int8_keeps_quality_and_has_its_own_identity(onnx_encoder: nestvec.Encoder) -> None:
    int8 = load_encoder("minilm", compute="int8")
    assert isinstance(int8, OnnxEncoder)
    assert int8.identity.details["compute"] == "int8"
    assert int8.identity.differences(onnx_encoder.identity)
    texts = sts_sentences()[:400]
    cos = _cos(int8.encode(texts), onnx_encoder.encode(texts))
    assert cos.mean() > 0.985 and cos.min() > 0.9


def test_bf16_on_cpu_and_fp16_needs_cuda(torch_encoder: nestvec.Encoder) -> None:
    bf16 = load_encoder("minilm", compute="bf16")
    assert isinstance(bf16, TransformerEncoder) and bf16.identity.details["compute"] == "bf16"
    texts = sts_sentences()[:100]
    assert _cos(bf16.encode(texts), torch_encoder.encode(texts)).min() > 0.99
    with pytest.raises(nestvec.InputError, match=r"fp16.*needs a CUDA device"):
        load_encoder("minilm", compute="fp16", device="cpu")


def test_bad_backend_options_name_the_choices() -> None:
    with pytest.raises(nestvec.ModelError, match="auto, onnx, torch"):
        load_encoder("minilm", backend="tensorrt")
    with pytest.raises(nestvec.ModelError, match="CPU only"):
        load_encoder("minilm", backend="onnx", device="cuda")
    with pytest.raises(nestvec.InputError, match="fp32, int8"):
        load_encoder("minilm", backend="onnx", compute="fp8")


def test_an_int8_collection_reopens_with_int8_and_refuses_fp32(tmp_path: Path) -> None:
    docs = paper_docs(30)
    int8 = load_encoder("minilm", compute="int8")
    with nestvec.Collection.create(tmp_path / "c", model=int8) as coll:
        coll.add(docs)
        first = [h.id for h in coll.search(docs[3].text, k=3)]
    with nestvec.Collection.open(tmp_path / "c") as coll:
        assert coll.encoder.identity.details["compute"] == "int8"
        assert [h.id for h in coll.search(docs[3].text, k=3)] == first
    with nestvec.Collection.open(tmp_path / "c", model="minilm") as coll:  # a place: run as the recipe says
        assert coll.encoder.identity.details["compute"] == "int8"
    with pytest.raises(nestvec.RecipeMismatchError, match="compute"):
        nestvec.Collection.open(tmp_path / "c", model=load_encoder("minilm", compute="fp32"))


def test_an_unwritable_cache_folder_falls_back_to_a_temporary_one(
    minilm_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tempfile

    monkeypatch.setenv("NESTVEC_CACHE_DIR", "/proc/nestvec-cannot-write-here")  # even root cannot
    path = onnx_file(read_st_folder(minilm_dir), "fp32")
    assert path.is_file() and Path(tempfile.gettempdir()) in path.parents


def test_cli_takes_backend_and_compute_and_refuses_unknown_ones(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from nestvec.cli.main import app

    source = tmp_path / "texts.txt"
    source.write_text("binary codes for vector search\nstatic embeddings\n", encoding="utf-8")
    runner = CliRunner()
    done = runner.invoke(app, ["embed", str(source), str(tmp_path / "v.npy"), "--compute", "int8"])
    assert done.exit_code == 0, done.output
    expected = load_encoder("minilm", compute="int8").encode(source.read_text().splitlines())
    assert np.abs(np.load(tmp_path / "v.npy") - expected).max() < 1e-6
    bad = runner.invoke(app, ["embed", str(source), str(tmp_path / "w.npy"), "--backend", "tensorrt"])
    assert bad.exit_code == 1 and "Valid choices: auto, onnx, torch" in bad.output
    assert not (tmp_path / "w.npy").exists()


def test_eval_settings_name_the_backend_and_compute() -> None:
    from nestvec.eval import Setting

    setting = Setting.parse("minilm:backend=onnx:compute=int8:dims=128")
    recipe = setting.recipe
    assert (recipe.encoder.backend, recipe.encoder.compute, recipe.vectors.dims) == ("onnx", "int8", 128)
    assert setting.label == "minilm:backend=onnx:compute=int8:dims=128"
    assert setting.encoder().identity.details["compute"] == "int8"
    assert Setting.parse("minilm").recipe.encoder != recipe.encoder  # a retrieval corpus is embedded per encoder


def test_auto_falls_back_to_torch_when_the_export_fails(
    minilm_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nestvec.encoders.transformer import onnx_export
    from tests.conftest import model_variant

    # No architecture at hand makes torch.onnx fail for real, so the exporter is made to fail.
    def broken(folder: object, path: object, layers: object = None) -> None:
        raise nestvec.ModelError("Could not export it to ONNX (UnsupportedOperatorError: made up).")

    monkeypatch.setattr(onnx_export, "_export", broken)
    monkeypatch.setenv("NESTVEC_CACHE_DIR", str(tmp_path / "cache"))  # nothing cached: the export must run
    folder = model_variant(minilm_dir, tmp_path / "variant")
    with pytest.warns(RuntimeWarning, match="made up.*with torch instead"):
        encoder = load_encoder(folder)
    assert isinstance(encoder, TransformerEncoder)
    with pytest.raises(nestvec.ModelError, match="made up"):
        load_encoder(folder, backend="onnx")
