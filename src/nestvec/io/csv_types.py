"""Typed CSV columns: a column whose every value reads as a number (or boolean) is one.

CSV has no types, so metadata read from it was all strings, and a filter such as
{"year": {"$gte": 2020}} could never match. Each metadata column's type is inferred from the
whole file (one pass before the records are read): integers when every non-empty value is an
integer written plainly (no leading zeros, so codes such as "02134" stay strings), floats when
every one is a finite decimal number, booleans when every one is true or false (any case), and
strings otherwise. An empty cell in a typed column is null.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

TYPES = ("int", "float", "bool", "str")
_INT = re.compile(r"-?(0|[1-9][0-9]*)")
_FLOAT = re.compile(r"-?((0|[1-9][0-9]*)(\.[0-9]*)?|\.[0-9]+)([eE][-+]?[0-9]+)?")  # no leading zeros either
_BOOL = {"true": True, "false": False}


def column_types(rows: Iterable[dict[str, str]], *, keep: set[str | None]) -> dict[str, str]:
    """The typed columns of `rows` and their types; the columns in `keep` (id, text) stay strings."""
    possible: dict[str, set[str]] = {}
    for row in rows:
        for column, value in row.items():
            if column in keep or not value:
                continue
            left = possible.setdefault(column, {"int", "float", "bool"})
            if left:
                left.intersection_update(_fits(value))
    return {column: next(t for t in TYPES if t in left) for column, left in possible.items() if left}


def _fits(value: str) -> set[str]:
    if _INT.fullmatch(value) and -(2**63) <= int(value) < 2**63:
        return {"int", "float"}
    if _FLOAT.fullmatch(value):
        return {"float"}
    return {"bool"} if value.lower() in _BOOL else set()


def typed(row: dict[str, Any], types: dict[str, str]) -> dict[str, Any]:
    """`row` with its typed columns converted (empty cells to null)."""
    if not types:
        return row
    out = dict(row)
    for column, kind in types.items():
        value = out.get(column)
        if not isinstance(value, str):
            continue
        if not value:
            out[column] = None
        elif kind == "int":
            out[column] = int(value)
        elif kind == "float":
            out[column] = float(value)
        else:
            out[column] = _BOOL[value.lower()]
    return out
