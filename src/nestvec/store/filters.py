"""Metadata filters, compiled to SQL over the documents' JSON metadata.

Syntax (as in MongoDB and Chroma): {"year": 2021} is equality; {"year": {"$gte": 2020, "$lt": 2023}}
a range; "$in"/"$nin" take lists; several keys are ANDed; {"$or": [...]} and {"$and": [...]} nest.
Dotted keys reach into nested objects: {"venue.name": "ACL"}.
"""

from __future__ import annotations

import math
from typing import Any

from nestvec.errors import InputError
from nestvec.limits import check_filter_shape
from nestvec.registry import unknown_name_message

_COMPARISONS = {"$eq": "=", "$ne": "!=", "$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}
_LISTS = {"$in": "IN", "$nin": "NOT IN"}
_SCALARS = (str, int, float, bool, type(None))


def compile_filter(spec: dict[str, Any]) -> tuple[str, list[Any]]:
    """Return an SQL boolean expression over `d.metadata` and its parameters."""
    check_filter_shape(spec)
    return _compile(spec)


def _compile(spec: dict[str, Any]) -> tuple[str, list[Any]]:
    if not isinstance(spec, dict) or not spec:
        raise InputError(f'A filter must be a non-empty JSON object such as {{"year": 2021}}, got {spec!r:.200}.')
    clauses: list[str] = []
    params: list[Any] = []
    for key, value in spec.items():
        if key in ("$and", "$or"):
            if not isinstance(value, list) or not value:
                raise InputError(f"'{key}' takes a non-empty list of filters, got {value!r}.")
            parts = [_compile(item) for item in value]
            clauses.append("(" + f" {key[1:].upper()} ".join(p[0] for p in parts) + ")")
            params += [x for p in parts for x in p[1]]
        elif key.startswith("$"):
            raise InputError(unknown_name_message("filter operator", key, ["$and", "$or"]) + " (at the top level).")
        else:
            sql, args = _field(key, value)
            clauses.append(sql)
            params += args
    return "(" + " AND ".join(clauses) + ")", params


def _path(key: str) -> str:
    if not key or '"' in key or "\\" in key:
        raise InputError(f"Filter field {key!r} is not usable: field names must be non-empty, without quotes.")
    return "$." + ".".join(f'"{part}"' for part in key.split("."))


def _sql_value(field: str, value: Any) -> Any:
    if not isinstance(value, _SCALARS):
        raise InputError(f"Filter on '{field}' compares with {value!r}; expected a string, number, boolean or null.")
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int) and not -(2**63) <= value < 2**63:  # SQLite integers are 64-bit
        raise InputError(f"Filter on '{field}' compares with {value}, beyond 64-bit integers; use a float.")
    if isinstance(value, float) and not math.isfinite(value):
        raise InputError(f"Filter on '{field}' compares with {value}; expected a finite number.")
    return value


def _field(key: str, condition: Any) -> tuple[str, list[Any]]:
    column = "json_extract(d.metadata, ?)"
    path = _path(key)
    if not isinstance(condition, dict):
        condition = {"$eq": condition}
    if not condition:
        raise InputError(f"Filter on '{key}' has no condition.")
    clauses: list[str] = []
    params: list[Any] = []
    for op, value in condition.items():
        if op in ("$eq", "$ne") and value is None:
            clauses.append(f"{column} IS {'NOT ' if op == '$ne' else ''}NULL")
            params.append(path)
        elif op in _COMPARISONS:
            clauses.append(f"{column} {_COMPARISONS[op]} ?")
            params += [path, _sql_value(key, value)]
        elif op in _LISTS:
            if not isinstance(value, list) or not value:
                raise InputError(f"'{op}' on '{key}' takes a non-empty list, got {value!r}.")
            clauses.append(f"{column} {_LISTS[op]} ({','.join('?' * len(value))})")
            params += [path] + [_sql_value(key, v) for v in value]
        else:
            raise InputError(f"Filter on '{key}': " + unknown_name_message("operator", op, [*_COMPARISONS, *_LISTS]))
    return "(" + " AND ".join(clauses) + ")", params
