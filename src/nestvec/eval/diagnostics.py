"""Embedding-space diagnostics: how spread out, how isotropic, how well aligned the vectors are."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from nestvec.errors import InputError
from nestvec.transforms.reduce import normalize


@dataclass(frozen=True)
class Diagnostics:
    vectors: int
    dim: int
    anisotropy: float  # mean cosine of random pairs: near 0 is isotropic, near 1 a narrow cone
    effective_rank: float  # exp(entropy of normalized singular values) of the centered matrix
    uniformity: float  # Wang & Isola: log E exp(-2 |x - y|^2) over random pairs (lower is more uniform)
    alignment: float | None  # Wang & Isola: E |x - y|^2 over positive pairs (lower is better)
    norm_mean: float
    norm_std: float
    norm_min: float
    norm_max: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def diagnose(
    vectors: np.ndarray, *, positives: tuple[np.ndarray, np.ndarray] | None = None, pairs: int = 20000, seed: int = 0
) -> Diagnostics:
    """Statistics of `vectors` (n, d); `positives` are two aligned arrays of matching texts."""
    if vectors.ndim != 2 or len(vectors) < 2:
        raise InputError(f"Diagnostics need at least 2 vectors, got shape {vectors.shape}.")
    rng = np.random.default_rng(seed)
    norms = np.linalg.norm(vectors, axis=1)
    unit = normalize(vectors.astype(np.float64))
    i, j = rng.integers(0, len(unit), size=(2, pairs))
    keep = i != j
    cosines = (unit[i[keep]] * unit[j[keep]]).sum(axis=1)
    distances = 2.0 - 2.0 * cosines  # squared distance of unit vectors
    singular = np.linalg.svd(unit - unit.mean(axis=0), compute_uv=False)
    p = singular / singular.sum()
    alignment = None
    if positives is not None:
        a, b = normalize(positives[0].astype(np.float64)), normalize(positives[1].astype(np.float64))
        alignment = float((np.linalg.norm(a - b, axis=1) ** 2).mean())
    return Diagnostics(
        vectors=len(vectors),
        dim=vectors.shape[1],
        anisotropy=float(cosines.mean()),
        effective_rank=float(np.exp(-(p[p > 0] * np.log(p[p > 0])).sum())),
        uniformity=float(np.log(np.exp(-2.0 * distances).mean())),
        alignment=alignment,
        norm_mean=float(norms.mean()),
        norm_std=float(norms.std()),
        norm_min=float(norms.min()),
        norm_max=float(norms.max()),
    )
