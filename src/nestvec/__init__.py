"""nestvec: embed text, compress, store and search vectors, and measure what each choice costs.

Names are imported on first use (PEP 562), so `import nestvec` and `nestvec --help` stay fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from nestvec._version import __version__

if TYPE_CHECKING:
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
    from nestvec.index.spec import IndexSpec
    from nestvec.recipe import Recipe
    from nestvec.store import AddReport, Chunk, Collection, CollectionInfo, Document, Hit, LongDocuments
    from nestvec.store.fusion import Fusion
    from nestvec.store.sparse import SparseSpec

_WHERE = {
    "nestvec.encoders": (
        "DEFAULT_MODEL",
        "CachedEncoder",
        "EmbeddingCache",
        "Encoder",
        "ModelIdentity",
        "load_encoder",
    ),
    "nestvec.errors": (
        "CollectionError",
        "DuplicateIdError",
        "InputError",
        "InputFileError",
        "MissingExtraError",
        "ModelError",
        "NestvecError",
        "RecipeMismatchError",
    ),
    "nestvec.index.spec": ("IndexSpec",),
    "nestvec.recipe": ("Recipe",),
    "nestvec.store": ("AddReport", "Chunk", "Collection", "CollectionInfo", "Document", "Hit", "LongDocuments"),
    "nestvec.store.check": ("CheckReport", "RepairReport", "check_collection", "repair_collection"),
    "nestvec.store.fusion": ("Fusion",),
    "nestvec.store.sparse": ("SparseSpec",),
}
_MODULE = {name: module for module, names in _WHERE.items() for name in names}
__all__ = [
    "DEFAULT_MODEL",
    "AddReport",
    "CachedEncoder",
    "CheckReport",
    "Chunk",
    "Collection",
    "CollectionError",
    "CollectionInfo",
    "Document",
    "DuplicateIdError",
    "EmbeddingCache",
    "Encoder",
    "Fusion",
    "Hit",
    "IndexSpec",
    "InputError",
    "InputFileError",
    "LongDocuments",
    "MissingExtraError",
    "ModelError",
    "ModelIdentity",
    "NestvecError",
    "Recipe",
    "RecipeMismatchError",
    "RepairReport",
    "SparseSpec",
    "__version__",
    "check_collection",
    "load_encoder",
    "repair_collection",
]


def __getattr__(name: str) -> Any:
    if name not in _MODULE:
        raise AttributeError(f"module 'nestvec' has no attribute {name!r}")
    value = getattr(importlib.import_module(_MODULE[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
