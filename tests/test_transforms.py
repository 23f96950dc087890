"""Transforms are pure and saved as config.json + safetensors; codes decode as the index stores them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from nestvec.errors import CollectionError, InputError
from nestvec.eval import Setting, evaluate_sts
from nestvec.index import codec
from nestvec.transforms import TRANSFORMS, PrincipalAxes, Truncate, Whiten, load, save
from tests.conftest import STS_TEST


@pytest.fixture(scope="module")
def sample() -> np.ndarray:
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(500, 32)).astype(np.float32) * np.linspace(0.2, 3, 32, dtype=np.float32) + 0.5
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_fit_returns_a_new_object_and_leaves_the_original_unfitted(sample: np.ndarray) -> None:
    for blank in (Whiten(dims=8), PrincipalAxes(dims=8)):
        fitted = blank.fit(sample)
        assert fitted is not blank and fitted.fitted and not blank.fitted
        with pytest.raises(InputError, match="not fitted"):
            blank.apply(sample)


@pytest.mark.parametrize("transform", [Truncate(16), Whiten(dims=12), Whiten(), PrincipalAxes(dims=12)])
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


def test_principal_axes_keep_full_width_cosines_and_order_the_axes_by_energy(sample: np.ndarray) -> None:
    full = PrincipalAxes().fit(sample)
    np.testing.assert_allclose(full.apply(sample) @ full.apply(sample).T, sample @ sample.T, atol=1e-5)
    energy = ((sample @ full.matrix) ** 2).sum(axis=0)
    assert np.all(np.diff(energy) <= 1e-4)  # the first axes hold the most: truncation keeps them
    eight = PrincipalAxes(dims=8).fit(sample)
    kept = lambda m: np.linalg.norm(sample @ m, axis=1).mean()  # noqa: E731
    assert kept(eight.matrix) > kept(np.eye(32, dtype=np.float32)[:, :8])  # more than the first 8 coordinates
    np.testing.assert_allclose(full.truncated(8).apply(sample), eight.apply(sample), atol=1e-5)


def test_codes_sizes_and_reconstruction(sample: np.ndarray) -> None:
    from nestvec.index.spec import IndexSpec

    int8 = codec.roundtrip("int8", sample)
    assert int8.dtype == np.float32 and int8.shape == sample.shape
    assert IndexSpec.make("flat", "int8").bytes_per_code(32) == 32
    # 256 levels over each dimension's 0.1%-99.9% range: a value inside it moves by at most half a step.
    low, high = np.quantile(sample, 0.001, axis=0), np.quantile(sample, 0.999, axis=0)
    inside = (sample >= low) & (sample <= high)
    assert np.abs(int8 - sample)[inside].max() <= ((high - low) / 255).max() / 2 + 1e-3
    assert IndexSpec.make("flat", "binary").bytes_per_code(384) == 48
    decoded = codec.roundtrip("binary", sample)
    bits = np.packbits(sample > 0, axis=1)
    hamming = np.unpackbits(bits[0] ^ bits[1]).sum()
    assert decoded[0] @ decoded[1] == pytest.approx(1 - 2 * hamming / 32)
    half = codec.roundtrip("float16", sample)
    np.testing.assert_allclose(half, sample, rtol=1e-3, atol=1e-4)  # float16 keeps 11 significant bits
    assert Truncate(8).apply(sample).shape == (500, 8)


def test_bad_transform_input(sample: np.ndarray, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="Unknown transform 'int4'"):
        TRANSFORMS["int4"]
    with pytest.raises(InputError, match="Cannot truncate 32-dim vectors to 64"):
        Truncate(64).apply(sample)
    with pytest.raises(InputError, match="fitted on 32-dim"):
        Whiten().fit(sample).apply(sample[:, :16])
    with pytest.raises(InputError, match="non-empty 2-D array"):
        Whiten().fit(np.zeros((0, 4)))
    with pytest.raises(CollectionError, match=r"config\.json is missing"):
        load(tmp_path)


def test_compressed_sts_settings_keep_quality() -> None:
    int8 = evaluate_sts(STS_TEST, Setting.make(codes="int8"))
    binary = evaluate_sts(STS_TEST, Setting.parse("minilm:codes=binary"))
    assert int8.bytes_per_vector == 384 and binary.bytes_per_vector == 48
    assert int8.main == pytest.approx(82.03, abs=0.2)
    assert 79.0 < binary.main < 82.03
    with pytest.raises(InputError, match="Unknown code precision 'int4'"):
        Setting.make(codes="int4")
