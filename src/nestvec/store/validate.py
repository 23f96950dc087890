"""Checks a batch of documents before anything is embedded or written."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from typing import Any

import numpy as np

from nestvec.errors import DuplicateIdError, InputError
from nestvec.limits import check_id, check_metadata, check_metadata_size
from nestvec.store.types import Document


def as_document(item: Any) -> Document:
    """Accept a Document or a mapping with id, text and optional metadata."""
    if isinstance(item, Document):
        doc = item
    elif isinstance(item, Mapping):
        missing = [key for key in ("id", "text") if key not in item]
        if missing:
            raise InputError(f"A document lacks {', '.join(missing)}: {dict(item)!r:.200}. Each needs 'id' and 'text'.")
        metadata = item.get("metadata") or {}
        if not isinstance(metadata, Mapping):
            raise InputError(f"Document {item['id']!r}: metadata must be a JSON object, got {type(metadata).__name__}.")
        doc = Document(id=item["id"], text=item["text"], metadata=dict(metadata))
    else:
        raise InputError(f"Expected a Document or a dict with 'id' and 'text', got {type(item).__name__}.")
    return _checked(doc)


def id_text(doc_id: Any) -> Any:
    """An integer id as the decimal text it is stored as; anything else as given, for the caller to check."""
    return str(doc_id) if isinstance(doc_id, int) and not isinstance(doc_id, bool) else doc_id


def _checked(doc: Document) -> Document:
    doc_id = id_text(doc.id)
    if not isinstance(doc_id, str) or not doc_id.strip():
        raise InputError(f"Document ids must be non-empty strings, got {doc.id!r}.")
    check_id(doc_id)
    if not isinstance(doc.text, str):
        raise InputError(f"Document '{doc_id}': text must be a string, got {type(doc.text).__name__}.")
    if not doc.text.strip():
        raise InputError(
            f"Document '{doc_id}' has an empty or whitespace-only text; there is nothing to embed. "
            "Drop it, or skip such records (--skip-empty in the CLI)."
        )
    if not isinstance(doc.metadata, dict):
        raise InputError(f"Document '{doc_id}': metadata must be a JSON object, got {type(doc.metadata).__name__}.")
    check_metadata(doc_id, doc.metadata)
    metadata = doc.metadata
    try:
        encoded = json.dumps(metadata, allow_nan=False, ensure_ascii=False)
    except TypeError:  # numpy's scalars and arrays (from pandas, say) stored as the plain values they hold
        encoded, metadata = _plain_metadata(doc_id, metadata)
    except ValueError as exc:
        raise InputError(f"Document '{doc_id}': metadata is not JSON-serializable ({exc}).") from exc
    for what, value in (("id", doc_id), ("text", doc.text), ("metadata", encoded)):
        try:  # JSON and Python strings may hold lone surrogates, which SQLite and tokenizers refuse
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InputError(f"Document {doc_id!r}: {what} is not valid Unicode (unpaired surrogate).") from exc
    check_metadata_size(doc_id, encoded)
    return doc if (doc_id, metadata) == (doc.id, doc.metadata) else Document(doc_id, doc.text, metadata)


def _plain_metadata(doc_id: str, metadata: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    def plain(value: Any) -> Any:
        if isinstance(value, np.generic | np.ndarray):
            return value.tolist()
        raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")

    try:
        encoded = json.dumps(metadata, allow_nan=False, ensure_ascii=False, default=plain)
    except (TypeError, ValueError) as exc:
        raise InputError(f"Document '{doc_id}': metadata is not JSON-serializable ({exc}).") from exc
    return encoded, json.loads(encoded)


def check_unique(docs: list[Document]) -> None:
    counts = Counter(d.id for d in docs)
    repeated = sorted(i for i, n in counts.items() if n > 1)
    if repeated:
        shown = ", ".join(repr(i) for i in repeated[:10])
        raise DuplicateIdError(
            f"{len(repeated)} id(s) appear more than once in one batch: {shown}. "
            "Ids must be unique; nothing was written."
        )
