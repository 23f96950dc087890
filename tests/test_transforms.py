"""Transforms are pure, saved as config.json + safetensors, and cost what they claim."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from nestvec.errors import CollectionError, InputError
from nestvec.eval import Setting, evaluate_sts
from nestvec.transforms import TRANSFORMS, Binary, Float16, Int8, Truncate, Whiten, load, save
from tests.conftest import STS_TEST


@pytest.fixture(scope="module")
def sample() -> np.ndarray:
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(500, 32)).astype(np.float32) * np.linspace(0.2, 3, 32, dtype=np.float32) + 0.5
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_fit_returns_a_new_object_and_leaves_the_original_unfitted(sample: np.ndarray) -> None:
    for blank in (Whiten(dims=8), Int8(quantile=0.01)):
        fitted = blank.fit(sample)
        assert fitted is not blank and fitted.fitted and not blank.fitted
        with pytest.raises(InputError, match="not fitted"):
            blank.apply(sample)


@pytest.mark.parametrize("transform", [Truncate(16), Whiten(dims=12), Whiten(), Float16(), Int8(0.005), Binary()])
def test_save_and_load_round_trip(transform: object, sample: np.ndarray, tmp_path: Path) -> None:
    fitted = transform.fit(sample)  # type: ignore[attr-defined]
    folder = save(fitted, tmp_path / "t")
    config = json.loads((folder / "config.json").read_text())
    assert config["kind"] == "nestvec.transform" and config["format_version"] == 1 and config["name"] == fitted.name
    assert not list(folder.glob("*.pkl")) and not list(folder.glob("*.bin"))
    restored = load(folder)
    np.testing.assert_array_equal(restored.apply(sample), fitted.apply(sample))


def test_whitening_decorrelates_the_fitted_sample(sample: np.ndarray) -> None:
    whiten = Whiten().fit(sample)
    centered = (sample - whiten.mean) @ whiten.matrix
    np.testing.assert_allclose(np.cov(centered, rowvar=False), np.eye(32), atol=1e-3)
    assert whiten.apply(sample).shape == (500, 32)


def test_codes_sizes_and_reconstruction(sample: np.ndarray) -> None:
    int8 = Int8().fit(sample)
    codes = int8.apply(sample)
    assert codes.dtype == np.int8 and codes.nbytes == 500 * 32 == 500 * int8.bytes_per_vector(32)
    step = (int8.high - int8.low) / 255
    assert np.abs(int8.decode(codes) - sample).max() <= step.max() / 2 + 1e-6
    bits = Binary().apply(sample)
    assert bits.dtype == np.uint8 and bits.shape == (500, 4) and Binary().bytes_per_vector(384) == 48
    decoded = Binary().decode(bits)
    hamming = np.unpackbits(bits[0] ^ bits[1]).sum()
    assert decoded[0] @ decoded[1] == pytest.approx(1 - 2 * hamming / 32)
    assert Float16().apply(sample).dtype == np.float16 and Truncate(8).apply(sample).shape == (500, 8)


def test_bad_transform_input(sample: np.ndarray, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="Unknown transform 'int4'"):
        TRANSFORMS["int4"]
    with pytest.raises(InputError, match="Cannot truncate 32-dim vectors to 64"):
        Truncate(64).apply(sample)
    with pytest.raises(InputError, match="calibrated on 32-dim"):
        Int8().fit(sample).apply(sample[:, :16])
    with pytest.raises(InputError, match="non-empty 2-D array"):
        Int8().fit(np.zeros((0, 4)))
    with pytest.raises(CollectionError, match=r"config\.json is missing"):
        load(tmp_path)


def test_compressed_sts_settings_keep_quality() -> None:
    int8 = evaluate_sts(STS_TEST, Setting(precision="int8"))
    binary = evaluate_sts(STS_TEST, Setting.parse("minilm:precision=binary"))
    assert int8.bytes_per_vector == 384 and binary.bytes_per_vector == 48
    assert int8.main == pytest.approx(82.03, abs=0.2)
    assert 79.0 < binary.main < 82.03
    with pytest.raises(InputError, match="Unknown precision 'int4'"):
        Setting(precision="int4")
