"""nestvec: embed text, compress, store and search vectors, and measure what each choice costs."""

from __future__ import annotations

__version__ = "0.1.0"

from nestvec.encoders import DEFAULT_MODEL, CachedEncoder, EmbeddingCache, Encoder, ModelIdentity, load_encoder
from nestvec.errors import (
    CollectionError,
    DuplicateIdError,
    InputError,
    InputFileError,
    MissingExtraError,
    ModelError,
    NestvecError,
    RecipeMismatchError,
)
from nestvec.store import AddReport, Chunk, Collection, CollectionInfo, Document, Hit, LongDocuments

__all__ = [
    "DEFAULT_MODEL",
    "AddReport",
    "CachedEncoder",
    "Chunk",
    "Collection",
    "CollectionError",
    "CollectionInfo",
    "Document",
    "DuplicateIdError",
    "EmbeddingCache",
    "Encoder",
    "Hit",
    "InputError",
    "InputFileError",
    "LongDocuments",
    "MissingExtraError",
    "ModelError",
    "ModelIdentity",
    "NestvecError",
    "RecipeMismatchError",
    "__version__",
    "load_encoder",
]
