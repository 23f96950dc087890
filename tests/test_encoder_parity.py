"""nestvec's transformer encoder reproduces sentence-transformers' vectors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file
from sentence_transformers import SentenceTransformer

import nestvec
from tests.conftest import model_variant, sts_sentences


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return (a * b).sum(axis=1)


def test_minilm_matches_sentence_transformers_on_every_sts_test_sentence(
    encoder: nestvec.Encoder, minilm_dir: Path
) -> None:
    sentences = sts_sentences()
    assert len(sentences) > 2000
    ours = encoder.encode(sentences, batch_size=64, progress=False)
    reference = SentenceTransformer(str(minilm_dir), device="cpu").encode(sentences, batch_size=64)
    assert ours.dtype == np.float32 and ours.shape == (len(sentences), 384)
    cosines = _cosines(ours, reference)
    assert cosines.min() >= 0.9999, f"worst sentence: {sentences[int(cosines.argmin())]!r}"
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)


def test_output_order_is_input_order_whatever_the_batch_size(encoder: nestvec.Encoder) -> None:
    texts = ["short", "a much longer sentence about vector search and binary codes " * 3, "mid length text here", "x"]
    whole = encoder.encode(texts, batch_size=64)
    one_by_one = np.vstack([encoder.encode([t]) for t in texts])
    np.testing.assert_allclose(whole, one_by_one, atol=1e-5)
    shuffled = encoder.encode(texts[::-1], batch_size=2)[::-1]
    np.testing.assert_allclose(whole, shuffled, atol=1e-5)


def test_long_texts_are_truncated_like_sentence_transformers(encoder: nestvec.Encoder, minilm_dir: Path) -> None:
    text = " ".join(f"token{i} embedding retrieval" for i in range(400))
    assert encoder.token_counts([text])[0] > encoder.max_tokens == 256
    ours = encoder.encode([text, "short one"])
    reference = SentenceTransformer(str(minilm_dir), device="cpu").encode([text, "short one"])
    assert _cosines(ours, reference).min() >= 0.9999


POOLINGS = {
    "cls": {"pooling_mode_cls_token": True},
    "max": {"pooling_mode_max_tokens": True},
    "mean_sqrt_len": {"pooling_mode_mean_sqrt_len_tokens": True},
    "lasttoken": {"pooling_mode_lasttoken": True},
    "weightedmean": {"pooling_mode_weightedmean_tokens": True},
    "cls+mean": {"pooling_mode_cls_token": True, "pooling_mode_mean_tokens": True},
}


@pytest.mark.parametrize("mode", sorted(POOLINGS))
def test_pooling_modes_match_sentence_transformers(mode: str, minilm_dir: Path, tmp_path: Path) -> None:
    folder = model_variant(minilm_dir, tmp_path / mode, pooling=POOLINGS[mode], normalize=False)
    sentences = sts_sentences()[:150]
    ours = nestvec.load_encoder(folder).encode(sentences, batch_size=32)
    reference = SentenceTransformer(str(folder), device="cpu").encode(sentences, batch_size=32)
    assert ours.shape == reference.shape
    assert _cosines(ours, reference).min() >= 0.9999
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), np.linalg.norm(reference, axis=1), rtol=1e-4)


def test_dense_module_matches_sentence_transformers(minilm_dir: Path, tmp_path: Path) -> None:
    dense = tmp_path / "dense_src"
    dense.mkdir()
    generator = torch.Generator().manual_seed(0)
    save_file(
        {
            "linear.weight": torch.randn(128, 384, generator=generator) / 20,
            "linear.bias": torch.randn(128, generator=generator),
        },
        str(dense / "model.safetensors"),
    )
    (dense / "config.json").write_text(
        json.dumps(
            {
                "in_features": 384,
                "out_features": 128,
                "bias": True,
                "activation_function": "torch.nn.modules.activation.Tanh",
            }
        )
    )
    folder = model_variant(minilm_dir, tmp_path / "with_dense", dense=dense)
    sentences = sts_sentences()[:100]
    encoder = nestvec.load_encoder(folder)
    assert encoder.dim == 128
    reference = SentenceTransformer(str(folder), device="cpu").encode(sentences)
    assert _cosines(encoder.encode(sentences), reference).min() >= 0.9999
