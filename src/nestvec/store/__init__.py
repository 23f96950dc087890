"""Durable collections: documents, metadata, vectors and the recipe that made them."""

from nestvec.store.chunking import LongDocuments
from nestvec.store.collection import Collection, CollectionInfo
from nestvec.store.types import AddReport, Chunk, Document, Hit

__all__ = ["AddReport", "Chunk", "Collection", "CollectionInfo", "Document", "Hit", "LongDocuments"]
