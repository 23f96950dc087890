"""What an export sends: a collection's chunks as rows, read off its change log.

A row is one stored vector: its chunk label (the key in every target: labels are never reused,
so a replaced document's new vectors never overwrite another's), the document id, the chunk's
number and text, the document's metadata and the float32 vector exactly as stored.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nestvec.store.collection import Collection


@dataclass(frozen=True)
class Rows:
    labels: np.ndarray  # int64, the target's primary key
    vectors: np.ndarray  # float32 (rows, dim)
    doc_ids: list[str]
    chunks: list[int]
    texts: list[str]
    metadata: list[dict[str, Any]]

    def __len__(self) -> int:
        return len(self.labels)


def rows_of(collection: Collection, batches: Iterator[tuple[np.ndarray, np.ndarray]]) -> Iterator[Rows]:
    """Rows for each batch of (labels, vectors); chunks deleted meanwhile are left out (the log
    that says they were removed is replayed by the next export)."""
    for labels, vectors in batches:
        info = collection.chunk_rows([int(label) for label in labels])
        keep = [i for i, label in enumerate(labels) if int(label) in info]
        if not keep:
            continue
        chunks = [info[int(labels[i])] for i in keep]
        docs = {d.id: d for d in collection.get(sorted({c.doc_id for c in chunks}))}
        present = [n for n, c in enumerate(chunks) if c.doc_id in docs]
        chunks = [chunks[n] for n in present]
        keep = [keep[n] for n in present]
        yield Rows(
            labels=np.asarray(labels[keep], dtype=np.int64),
            vectors=np.ascontiguousarray(vectors[keep], dtype=np.float32),
            doc_ids=[c.doc_id for c in chunks],
            chunks=[c.number for c in chunks],
            texts=[docs[c.doc_id].text[c.start : c.end] for c in chunks],
            metadata=[docs[c.doc_id].metadata for c in chunks],
        )


def vector_signature(collection: Collection) -> str:
    """What makes two collections' vectors comparable: the model's identity (not its display
    name), the recipe's vector steps and the fitted transforms' files. A target holding vectors
    of another signature is refused (unless overwritten)."""
    recipe = collection.recipe.to_dict()
    identity = {k: v for k, v in (recipe.get("identity") or {}).items() if k != "name"}
    fitted = sorted(
        (p.relative_to(collection.path).as_posix(), hashlib.sha256(p.read_bytes()).hexdigest())
        for p in Path(collection.path, "transforms").rglob("*")
        if p.is_file()
    )
    blob = json.dumps([identity, recipe["vectors"], fitted], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()
