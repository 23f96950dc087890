"""Durable collections: documents, metadata, vectors and the recipe that made them."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nestvec.store.chunking import LongDocuments
    from nestvec.store.collection import Collection, CollectionInfo
    from nestvec.store.types import AddReport, Chunk, Document, Hit

# Imported on first use: the recipe's value objects live in this package, and reading them
# (the CLI does, to build its options) must not load the collection machinery.
_MODULE = {
    "LongDocuments": "nestvec.store.chunking",
    "Collection": "nestvec.store.collection",
    "CollectionInfo": "nestvec.store.collection",
    "AddReport": "nestvec.store.types",
    "Chunk": "nestvec.store.types",
    "Document": "nestvec.store.types",
    "Hit": "nestvec.store.types",
}
__all__ = ["AddReport", "Chunk", "Collection", "CollectionInfo", "Document", "Hit", "LongDocuments"]


def __getattr__(name: str) -> Any:
    if name not in _MODULE:
        raise AttributeError(f"module 'nestvec.store' has no attribute {name!r}")
    return getattr(importlib.import_module(_MODULE[name]), name)
