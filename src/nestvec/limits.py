"""Bounds on what one document or one filter may hold: the same for the library, CLI and server.

Without them one stored record can make every later search fail: metadata nested a thousand
deep passes `json.dumps` on the way in but not inside a response around it; an integer beyond
64 bits is stored by SQLite's JSON as an imprecise float, so filters on it compare wrongly.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from typing import Any

from nestvec.errors import InputError

MAX_ID_CHARS = 512
MAX_METADATA_BYTES = 64 * 1024
MAX_METADATA_DEPTH = 32
MAX_FILTER_DEPTH = 16
MAX_FILTER_TERMS = 1024  # values and conditions in one filter (SQLite binds each as a parameter)
# One record (a line of .jsonl/.txt, a CSV field) in an input file: readers stop at this many bytes
# instead of reading a runaway line whole, so one record costs at most a few times this in memory.
MAX_RECORD_BYTES = 32 * 1024 * 1024


def check_id(doc_id: str) -> None:
    if len(doc_id) > MAX_ID_CHARS:
        raise InputError(
            f"Document id {doc_id[:40]!r}… has {len(doc_id)} characters; ids may have at most {MAX_ID_CHARS}."
        )
    bad = next((c for c in doc_id if unicodedata.category(c) == "Cc"), None)
    if bad is not None:
        raise InputError(
            f"Document id {doc_id[:80]!r} holds the control character {bad!r}; ids must be printable text."
        )


def check_metadata(doc_id: str, metadata: dict[str, Any]) -> None:
    for value, depth in _nodes(metadata):
        if isinstance(value, (dict, list)) and depth > MAX_METADATA_DEPTH:
            raise InputError(f"Document '{doc_id}': metadata nests deeper than {MAX_METADATA_DEPTH} levels.")
        if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**63:
            raise InputError(
                f"Document '{doc_id}': metadata holds {value}, beyond 64-bit integers; store it as a string or a float."
            )


def check_metadata_size(doc_id: str, encoded: str) -> None:
    size = len(encoded.encode("utf-8"))
    if size > MAX_METADATA_BYTES:
        raise InputError(
            f"Document '{doc_id}': metadata is {size:,} bytes as JSON; the limit is "
            f"{MAX_METADATA_BYTES:,}. Keep large payloads elsewhere and store a reference."
        )


def check_filter_shape(spec: Any) -> None:
    """Depth and size of a filter, before it is compiled (compiling recurses)."""
    for terms, (value, depth) in enumerate(_nodes(spec), start=1):
        if terms > MAX_FILTER_TERMS:
            raise InputError(f"The filter holds more than {MAX_FILTER_TERMS} conditions and values; split the query.")
        if isinstance(value, (dict, list)) and depth > MAX_FILTER_DEPTH:
            raise InputError(f"The filter nests deeper than {MAX_FILTER_DEPTH} levels.")


def _nodes(value: Any) -> Iterator[tuple[Any, int]]:
    """Every value inside `value` with its depth (its own items are one deeper), walked without
    recursion, so no input can exhaust the stack; a container is yielded before its items."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        yield node, depth
        if isinstance(node, (dict, list)):
            items = node.values() if isinstance(node, dict) else node
            stack.extend((item, depth + 1) for item in items)
