"""Exact inner-product search over float32 vectors with one BLAS matrix-vector product."""

from __future__ import annotations

import numpy as np

from nestvec.index.rows import RowIndex


class FlatIndex(RowIndex):
    kind = "flat"
    code_dtype = np.float32

    def _encode(self, vectors: np.ndarray) -> np.ndarray:
        return vectors

    def _scores(self, query: np.ndarray, codes: np.ndarray) -> np.ndarray:
        return codes @ query
