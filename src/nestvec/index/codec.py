"""Vectors as an index's codes give them back: the one quantizer behind collections and eval.

`eval sts --compare minilm:codes=int8` and an int8 collection must mean the same vectors, so
eval does not quantize on its own: it trains the flat faiss structure a collection would build
for those codes (the same ranges, the same training sample) and decodes what it stores.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from nestvec.errors import InputError
from nestvec.index import backend
from nestvec.index.spec import IndexSpec

# Codes that only exist as search structures: their vectors cannot be handed back for comparison.
SEARCH_ONLY = ("rabitq",)


def check_decodable(codes: str) -> None:
    if codes in SEARCH_ONLY:
        raise InputError(
            f"codes={codes} name codes that exist only inside a collection's index, so only retrieval settings "
            "can use it; "
            "STS, pairs, classification and clustering compare the vectors themselves: use codes=int8, "
            "float16 or binary there."
        )


def roundtrip(codes: str, vectors: np.ndarray) -> np.ndarray:
    """`vectors` coded as a collection with `codes` would store them, and decoded to floats.

    Trained, where the codes need it, on the rows a collection trains on when these vectors are
    its first (index/vector_index.py's sample), so both give identical vectors.
    """
    from nestvec.index.vector_index import training_rows

    check_decodable(codes)
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    if codes == "float32" or len(vectors) == 0:
        return vectors
    dim = vectors.shape[1]
    if codes == "binary":
        return decode_bits(np.packbits(vectors > 0, axis=1), dim)
    index = backend.create(IndexSpec.make("flat", codes), dim, lists=0)
    sample, _ = training_rows(len(vectors), spill=False)
    backend.train(IndexSpec.make("flat", codes), index, vectors[sample])
    return decode(index, index.sa_encode(vectors), dim)


def decode(index: Any, data: np.ndarray, dim: int) -> np.ndarray:
    return np.asarray(index.sa_decode(data), dtype=np.float32).reshape(-1, dim)


def decode_bits(bits: np.ndarray, dim: int) -> np.ndarray:
    """±1/sqrt(dim) vectors whose inner products are 1 - 2·hamming/dim, the score binary codes get."""
    signs = np.unpackbits(bits, axis=1)[:, :dim].astype(np.float32)
    return (2.0 * signs - 1.0) / np.sqrt(dim)
