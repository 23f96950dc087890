"""Metadata filters, compiled to SQL over the documents' JSON metadata.

Syntax (as in MongoDB and Chroma): {"year": 2021} is equality; {"year": {"$gte": 2020, "$lt": 2023}}
a range; "$in"/"$nin" take lists; several keys are ANDed; {"$or": [...]} and {"$and": [...]} nest.
Dotted keys reach into nested objects: {"venue.name": "ACL"}.

Types are compared like with like: a number matches numbers only (integers and floats are one
type), a string strings, a boolean booleans; {"year": 2020} does not match "2020", {"flag": true}
does not match 1, and {"year": {"$gte": 2030}} never matches a string. {"x": null} matches a null
or a missing x. "$ne" and "$nin" are the exact complements of "$eq" and "$in": they also match
documents where the field is missing or of another type. Ordering ("$gt" …) takes a number or a
string. Lists and objects in metadata match no scalar condition. "$contains" matches a string
field holding the value as a substring, or a list field holding it as an item (of the same type):
{"tags": {"$contains": "ann"}}. {"$text": "binary codes"} (or {"$text": {"$contains": …}}) keeps
documents whose text holds the words, in any case.
"""

from __future__ import annotations

import math
from typing import Any

from nestvec.errors import InputError
from nestvec.limits import check_filter_shape
from nestvec.registry import unknown_name_message

_COMPARISONS = {"$eq": "=", "$ne": "!=", "$gt": ">", "$gte": ">=", "$lt": "<", "$lte": "<="}
_LISTS = ("$in", "$nin")


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
        elif key == "$text":
            sql, args = _text(value)
            clauses.append(sql)
            params += args
        elif key.startswith("$"):
            raise InputError(
                unknown_name_message("filter operator", key, ["$and", "$or", "$text"]) + " (at the top level)."
            )
        else:
            sql, args = _field(key, value)
            clauses.append(sql)
            params += args
    return "(" + " AND ".join(clauses) + ")", params


def _path(key: str) -> str:
    if not key or '"' in key or "\\" in key:
        raise InputError(f"Filter field {key!r} is not usable: field names must be non-empty, without quotes.")
    return "$." + ".".join(f'"{part}"' for part in key.split("."))


def _kind(field: str, value: Any) -> str:
    """The JSON type a filter value compares with: number, text, bool or null."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        if not -(2**63) <= value < 2**63:  # SQLite integers are 64-bit
            raise InputError(f"Filter on '{field}' compares with {value}, beyond 64-bit integers; use a float.")
        return "number"
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InputError(f"Filter on '{field}' compares with {value}; expected a finite number.")
        return "number"
    if isinstance(value, str):
        return "text"
    raise InputError(f"Filter on '{field}' compares with {value!r:.100}; expected a string, number, boolean or null.")


# A value matches only values of its own JSON type: 2020 never equals or orders against "2020",
# and true is not 1. json_type is '' for a missing field, so no clause below is ever NULL and
# NOT (for $ne, $nin) is the exact complement.
_TYPE = "COALESCE(json_type(d.metadata, ?), '')"
_TYPES = {"number": "IN ('integer', 'real')", "text": "= 'text'"}


def _equals(field: str, path: str, value: Any) -> tuple[str, list[Any]]:
    kind = _kind(field, value)
    if kind == "null":  # a null value or no value at all
        return f"{_TYPE} IN ('null', '')", [path]
    if kind == "bool":
        return f"{_TYPE} = '{'true' if value else 'false'}'", [path]
    return f"({_TYPE} {_TYPES[kind]} AND json_extract(d.metadata, ?) = ?)", [path, path, value]


def _ordered(field: str, path: str, op: str, value: Any) -> tuple[str, list[Any]]:
    kind = _kind(field, value)
    if kind not in _TYPES:
        raise InputError(f"'{op}' on '{field}' orders numbers or strings; got {value!r}.")
    return f"({_TYPE} {_TYPES[kind]} AND json_extract(d.metadata, ?) {_COMPARISONS[op]} ?)", [path, path, value]


def _text(condition: Any) -> tuple[str, list[Any]]:
    """{"$text": "words"} or {"$text": {"$contains": "words"}}: the document's text holds them (any case)."""
    wrapped = isinstance(condition, dict) and list(condition) == ["$contains"]
    value = condition["$contains"] if wrapped else condition
    if not isinstance(value, str) or not value:
        raise InputError(f'"$text" takes a non-empty string, or {{"$contains": "…"}}; got {condition!r:.100}.')
    return "(instr(lower(d.text), lower(?)) > 0)", [value]


_ITEM_TYPES = {**_TYPES, "bool": "IN ('true', 'false')"}  # json_each's types: a boolean item is 'true' or 'false'


def _contains(field: str, path: str, value: Any) -> tuple[str, list[Any]]:
    """A string field holding `value` as a substring, or a list field holding it as an item (same type)."""
    kind = _kind(field, value)
    if kind == "null":
        raise InputError(f"'$contains' on '{field}' takes a string, number or boolean; got null.")
    item = "j.value = ?" if kind != "bool" else f"j.type = '{'true' if value else 'false'}'"
    listed = f"EXISTS (SELECT 1 FROM json_each(d.metadata, ?) j WHERE j.type {_ITEM_TYPES[kind]} AND {item})"
    args: list[Any] = [path, path] + ([value] if kind != "bool" else [])
    if kind != "text":
        return f"({_TYPE} = 'array' AND {listed})", args
    substring = "instr(json_extract(d.metadata, ?), ?) > 0"
    return f"(({_TYPE} = 'text' AND {substring}) OR ({_TYPE} = 'array' AND {listed}))", [path, path, value, *args]


def _field(key: str, condition: Any) -> tuple[str, list[Any]]:
    path = _path(key)
    if not isinstance(condition, dict):
        condition = {"$eq": condition}
    if not condition:
        raise InputError(f"Filter on '{key}' has no condition.")
    clauses: list[str] = []
    params: list[Any] = []
    for op, value in condition.items():
        if op in ("$eq", "$ne"):
            sql, args = _equals(key, path, value)
            sql = sql if op == "$eq" else f"NOT {sql}"
        elif op in _COMPARISONS:
            sql, args = _ordered(key, path, op, value)
        elif op == "$contains":
            sql, args = _contains(key, path, value)
        elif op in _LISTS:
            if not isinstance(value, list) or not value:
                raise InputError(f"'{op}' on '{key}' takes a non-empty list, got {value!r}.")
            parts = [_equals(key, path, v) for v in value]
            sql = "(" + " OR ".join(p[0] for p in parts) + ")"
            sql, args = (sql if op == "$in" else f"NOT {sql}"), [a for p in parts for a in p[1]]
        else:
            known = [*_COMPARISONS, *_LISTS, "$contains"]
            raise InputError(f"Filter on '{key}': " + unknown_name_message("operator", op, known))
        clauses.append(sql)
        params += args
    return "(" + " AND ".join(clauses) + ")", params
