"""Precision transforms: float16, calibrated int8 and packed sign bits, each with its similarity."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

import numpy as np

from nestvec.errors import InputError
from nestvec.transforms.base import check_vectors, require_fitted

_U = TypeVar("_U", bound="_Unfitted")


class _Unfitted:
    """Shared by transforms with nothing to learn: fitting returns the transform itself."""

    @property
    def fitted(self) -> bool:
        return True

    def fit(self: _U, vectors: np.ndarray) -> _U:
        return self

    def params(self) -> dict[str, Any]:
        return {}

    def tensors(self) -> dict[str, np.ndarray]:
        return {}

    def output_dim(self, dim: int) -> int:
        return dim

    @classmethod
    def restore(cls: type[_U], params: dict[str, Any], tensors: dict[str, np.ndarray]) -> _U:
        return cls()


@dataclass(frozen=True)
class Float16(_Unfitted):
    name: ClassVar[str] = "float16"

    def apply(self, vectors: np.ndarray) -> np.ndarray:
        return check_vectors(vectors, "float16").astype(np.float16)

    def decode(self, codes: np.ndarray) -> np.ndarray:
        return codes.astype(np.float32)

    def bytes_per_vector(self, dim: int) -> int:
        return 2 * dim


@dataclass(frozen=True)
class Int8:
    """Per-dimension ranges from the corpus (the `quantile` and 1-quantile), mapped onto -128..127."""

    name: ClassVar[str] = "int8"
    quantile: float = 0.0
    low: np.ndarray | None = field(default=None, repr=False, compare=False)
    high: np.ndarray | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not 0.0 <= self.quantile < 0.5:
            raise InputError(f"int8 quantile must be in [0, 0.5), got {self.quantile}.")

    @property
    def fitted(self) -> bool:
        return self.low is not None and self.high is not None

    def fit(self, vectors: np.ndarray) -> Int8:
        vectors = check_vectors(vectors, "int8.fit")
        low = np.quantile(vectors, self.quantile, axis=0).astype(np.float32)
        high = np.quantile(vectors, 1.0 - self.quantile, axis=0).astype(np.float32)
        return Int8(self.quantile, low, np.maximum(high, low + 1e-6))

    def _scale(self) -> tuple[np.ndarray, np.ndarray]:
        require_fitted(self)
        assert self.low is not None and self.high is not None
        return self.low, (self.high - self.low) / 255.0

    def apply(self, vectors: np.ndarray) -> np.ndarray:
        low, step = self._scale()
        vectors = check_vectors(vectors, "int8")
        if vectors.shape[1] != len(low):
            raise InputError(f"int8 was calibrated on {len(low)}-dim vectors, got {vectors.shape[1]}.")
        return np.clip(np.rint((vectors - low) / step) - 128, -128, 127).astype(np.int8)

    def decode(self, codes: np.ndarray) -> np.ndarray:
        low, step = self._scale()
        return ((codes.astype(np.float32) + 128) * step + low).astype(np.float32)

    def params(self) -> dict[str, Any]:
        return {"quantile": self.quantile}

    def tensors(self) -> dict[str, np.ndarray]:
        low, _ = self._scale()
        assert self.high is not None
        return {"low": low, "high": self.high}

    def output_dim(self, dim: int) -> int:
        return dim

    def bytes_per_vector(self, dim: int) -> int:
        return dim

    @classmethod
    def restore(cls, params: dict[str, Any], tensors: dict[str, np.ndarray]) -> Int8:
        return cls(float(params.get("quantile", 0.0)), tensors["low"], tensors["high"])


@dataclass(frozen=True)
class Binary(_Unfitted):
    """One sign bit per dimension, packed 8 to a byte. Similarity: 1 - 2·hamming/dim."""

    name: ClassVar[str] = "binary"

    def apply(self, vectors: np.ndarray) -> np.ndarray:
        return np.packbits(check_vectors(vectors, "binary") > 0, axis=1)

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """±1/sqrt(dim) vectors whose dot products equal 1 - 2·hamming/dim."""
        bits = np.unpackbits(codes, axis=1).astype(np.float32)
        return (2.0 * bits - 1.0) / np.sqrt(bits.shape[1])

    def bytes_per_vector(self, dim: int) -> int:
        return (dim + 7) // 8
