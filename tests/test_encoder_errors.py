"""Model folders that cannot be used give errors naming the path and what is wrong."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

import nestvec
from nestvec.errors import InputError, ModelError
from tests.conftest import model_variant


def test_unknown_name_lists_choices_and_suggests() -> None:
    with pytest.raises(ModelError, match=r"Valid choices: [^.]*\bminilm\b.*Did you mean 'minilm'"):
        nestvec.load_encoder("minilmm")


def test_a_device_this_machine_lacks_is_refused_by_name() -> None:
    import torch

    with pytest.raises(nestvec.InputError, match=r"Unknown device 'gpu0'\. Valid choices: cpu, cuda, cuda:N"):
        nestvec.load_encoder("minilm", device="gpu0")
    if not torch.cuda.is_available():  # on a GPU machine 'cuda' is a device it has
        with pytest.raises(nestvec.InputError, match="torch sees no CUDA GPU on this machine"):
            nestvec.load_encoder("minilm", device="cuda", backend="torch")


def test_missing_folder_is_named(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="was not found"):
        nestvec.load_encoder(tmp_path / "nope")


def test_folder_without_weights(minilm_dir: Path, tmp_path: Path) -> None:
    folder = model_variant(minilm_dir, tmp_path / "m")
    os.unlink(folder / "model.safetensors")
    with pytest.raises(ModelError, match=r"has no weights: expected model\.safetensors") as err:
        nestvec.load_encoder(folder)
    assert str(folder) in str(err.value)


def test_pickle_only_weights_are_refused(minilm_dir: Path, tmp_path: Path) -> None:
    folder = model_variant(minilm_dir, tmp_path / "m")
    os.unlink(folder / "model.safetensors")
    (folder / "pytorch_model.bin").write_bytes(b"not loaded, ever")
    with pytest.raises(ModelError, match="only pickle weights"):
        nestvec.load_encoder(folder)


def test_malformed_modules_json(minilm_dir: Path, tmp_path: Path) -> None:
    folder = model_variant(minilm_dir, tmp_path / "m")
    (folder / "modules.json").write_text("{not json")
    with pytest.raises(ModelError, match=r"modules\.json is not valid JSON"):
        nestvec.load_encoder(folder)


def test_unknown_module_type_lists_supported(minilm_dir: Path, tmp_path: Path) -> None:
    folder = model_variant(minilm_dir, tmp_path / "m")
    modules = json.loads((folder / "modules.json").read_text())
    modules.append({"idx": 9, "name": "9", "path": "9_X", "type": "sentence_transformers.models.LayerNorm"})
    (folder / "modules.json").write_text(json.dumps(modules))
    with pytest.raises(
        ModelError, match=r"Unknown module type 'LayerNorm'\. Valid choices: Dense, Normalize, Pooling, Transformer"
    ):
        nestvec.load_encoder(folder)


def test_missing_tokenizer(minilm_dir: Path, tmp_path: Path) -> None:
    folder = model_variant(minilm_dir, tmp_path / "m")
    os.unlink(folder / "tokenizer.json")
    with pytest.raises(ModelError, match=r"missing tokenizer\.json"):
        nestvec.load_encoder(folder)


def test_encode_rejects_a_bare_string_and_bad_batch_size(encoder: nestvec.Encoder) -> None:
    with pytest.raises(InputError, match="list of texts"):
        encoder.encode("one string")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="batch_size"):
        encoder.encode(["x"], batch_size=0)


def test_empty_input_and_empty_strings(encoder: nestvec.Encoder) -> None:
    assert encoder.encode([]).shape == (0, 384)
    # Encoders embed an empty string as sentence-transformers does; collections refuse it.
    vectors = encoder.encode(["", "   "])
    assert vectors.shape == (2, 384)


def test_the_bundled_model_loads_by_the_id_it_displays(encoder: nestvec.Encoder) -> None:
    for name in (encoder.name, encoder.name.rsplit("/", 1)[-1]):
        same = nestvec.load_encoder(name)
        assert same is encoder and same.source == "minilm"
    every_name = "HuggingFaceTB/SmolLM2-135M-Instruct, minilm, sentence-transformers/all-MiniLM-L6-v2, smollm2"
    with pytest.raises(ModelError, match=f"Valid choices: {every_name}\\."):
        nestvec.load_encoder("all-mpnet-base-v2")
