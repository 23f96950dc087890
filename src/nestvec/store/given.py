"""Vectors brought by the caller (embedded elsewhere with the collection's model), checked before use.

A collection's model normalizes its vectors, so vectors from that model are unit length and as
wide as the model: anything else (another model, raw unnormalized output, a transposed matrix)
would be stored without error and then ranked wrongly, so it is refused with what was found.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nestvec.errors import InputError

NORM_TOLERANCE = 1e-3


def checked_vectors(vectors: Any, *, rows: int | None, dim: int, what: str) -> np.ndarray:
    """`vectors` as a (rows, dim) float32 matrix of unit rows (any number of rows when `rows` is None;
    one vector alone is one row), or an InputError saying what is wrong."""
    try:
        matrix = np.asarray(vectors, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{what} must be a matrix of numbers ({exc}).") from exc
    if matrix.ndim == 1 and rows in (1, None):
        matrix = matrix[None, :]
    wanted = (len(matrix) if rows is None and matrix.ndim == 2 else rows, dim)
    if matrix.shape != wanted or not len(matrix):
        raise InputError(
            f"{what} must have shape ({'n' if rows is None else rows}, {dim}): one vector per item, as wide as "
            f"the collection's model; got {matrix.shape}."
        )
    squares = np.einsum("ij,ij->i", matrix, matrix)  # one pass; NaN and infinity carry through to it
    if not np.isfinite(squares).all():
        broken = np.nonzero(~np.isfinite(matrix).all(axis=1))[0]
        if len(broken):  # else finite values too large to square: refused below for their norm
            raise InputError(f"{what}: row {int(broken[0])} holds NaN or infinity.")
    norms = np.sqrt(squares)
    off = np.nonzero(np.abs(norms - 1.0) > NORM_TOLERANCE)[0]
    if len(off):
        raise InputError(
            f"{what}: row {int(off[0])} has norm {norms[off[0]]:.4f}; the collection's model makes unit vectors. "
            "Normalize them (v / |v|), or check that they come from the same model."
        )
    return matrix
