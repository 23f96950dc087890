"""Transforms that keep vectors float: Matryoshka truncation, whitening and principal axes."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import numpy as np

from nestvec.errors import InputError
from nestvec.transforms.base import check_vectors, require_fitted


def normalize(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length; zero rows stay zero instead of turning into NaN."""
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


@dataclass(frozen=True)
class Truncate:
    """Keep the first `dims` dimensions and renormalize (Matryoshka). Needs no fitting."""

    name: ClassVar[str] = "truncate"
    dims: int

    def __post_init__(self) -> None:
        if self.dims < 1:
            raise InputError(f"truncate dims must be ≥ 1, got {self.dims}.")

    @property
    def fitted(self) -> bool:
        return True

    def fit(self, vectors: np.ndarray) -> Truncate:
        check_vectors(vectors, "truncate.fit")
        return self

    def apply(self, vectors: np.ndarray) -> np.ndarray:
        vectors = check_vectors(vectors, "truncate")
        if vectors.shape[1] < self.dims:
            raise InputError(f"Cannot truncate {vectors.shape[1]}-dim vectors to {self.dims} dims.")
        return normalize(vectors[:, : self.dims]).astype(np.float32)

    def params(self) -> dict[str, Any]:
        return {"dims": self.dims}

    def tensors(self) -> dict[str, np.ndarray]:
        return {}

    def output_dim(self, dim: int) -> int:
        return self.dims

    def bytes_per_vector(self, dim: int) -> int:
        return 4 * self.dims

    @classmethod
    def restore(cls, params: dict[str, Any], tensors: dict[str, np.ndarray]) -> Truncate:
        return cls(int(params["dims"]))


@dataclass(frozen=True)
class Whiten:
    """Center, rotate onto principal axes and scale to unit variance (WhiteningBERT), keep `dims`."""

    name: ClassVar[str] = "whiten"
    dims: int | None = None
    mean: np.ndarray | None = field(default=None, repr=False, compare=False)
    matrix: np.ndarray | None = field(default=None, repr=False, compare=False)

    @property
    def fitted(self) -> bool:
        return self.mean is not None and self.matrix is not None

    def fit(self, vectors: np.ndarray) -> Whiten:
        vectors = check_vectors(vectors, f"{self.name}.fit").astype(np.float64)
        dims = self.dims or vectors.shape[1]
        if dims > vectors.shape[1] or len(vectors) < 2:
            raise InputError(
                f"{self.name} needs ≥ 2 sample vectors and dims ≤ {vectors.shape[1]}, got {len(vectors)} and {dims}."
            )
        mean, matrix = self._axes(vectors, dims)
        return replace(self, mean=mean.astype(np.float32), matrix=matrix.astype(np.float32))

    @staticmethod
    def _axes(vectors: np.ndarray, dims: int) -> tuple[np.ndarray, np.ndarray]:
        mean = vectors.mean(axis=0)
        u, s, _ = np.linalg.svd(np.cov(vectors - mean, rowvar=False))
        return mean, u[:, :dims] / np.sqrt(np.maximum(s[:dims], 1e-12))

    def apply(self, vectors: np.ndarray) -> np.ndarray:
        require_fitted(self)
        assert self.mean is not None and self.matrix is not None
        vectors = check_vectors(vectors, self.name)
        if vectors.shape[1] != len(self.mean):
            raise InputError(f"{self.name} was fitted on {len(self.mean)}-dim vectors, got {vectors.shape[1]}.")
        return normalize((vectors - self.mean) @ self.matrix).astype(np.float32)

    def params(self) -> dict[str, Any]:
        return {"dims": self.dims}

    def tensors(self) -> dict[str, np.ndarray]:
        require_fitted(self)
        assert self.mean is not None and self.matrix is not None
        return {"mean": self.mean, "matrix": self.matrix}

    def output_dim(self, dim: int) -> int:
        return self.dims or dim

    def bytes_per_vector(self, dim: int) -> int:
        return 4 * self.output_dim(dim)

    @classmethod
    def restore(cls, params: dict[str, Any], tensors: dict[str, np.ndarray]) -> Whiten:
        return cls(params.get("dims"), tensors["mean"], tensors["matrix"])

    def truncated(self, dims: int) -> Whiten:
        """The same fit keeping only the first `dims` axes (they are ordered by variance)."""
        require_fitted(self)
        assert self.matrix is not None
        return replace(self, dims=dims, matrix=self.matrix[:, :dims])


@dataclass(frozen=True)
class PrincipalAxes(Whiten):
    """Rotate onto the principal axes of the sample (uncentered, unscaled: cosines at full width
    are unchanged), keep `dims`. Truncating a model never trained to nest keeps its first
    coordinates, which are no more informative than the rest; the first principal axes of the
    collection's own vectors keep the most of them (PCA, Matryoshka-Adaptor's linear start)."""

    name: ClassVar[str] = "pca"

    @staticmethod
    def _axes(vectors: np.ndarray, dims: int) -> tuple[np.ndarray, np.ndarray]:
        _, _, axes = np.linalg.svd(vectors, full_matrices=False)
        return np.zeros(vectors.shape[1]), axes[:dims].T  # uncentered and unscaled: a pure rotation
