"""Metadata filters compare like with like: random typed metadata and random filters, checked
against a plain-Python evaluation of the documented rule, through the library, the CLI and HTTP."""

from __future__ import annotations

import json
import operator
import random
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

import nestvec
from nestvec.errors import InputError
from nestvec.serve import ServeConfig, create_app

FIELDS = ("a", "b", "c")
SCALARS: list[Any] = [None, True, False, -2, 0, 1, 2, 2.0, 2.5, 2020, "", "1", "2", "2020", "apple", "b"]
STORED: list[Any] = [*SCALARS, "apple pie", [1, 2], ["b", "apple"], [True, 2.5], {"x": 1}]
WORDS = ["apple", "b", "1", "pie", "zzz"]
TEXTS = ["Binary codes", "binary Apple codes", "graph search", "Apple pie"]
ORDERS: dict[str, Callable[[Any, Any], bool]] = {
    "$gt": operator.gt, "$gte": operator.ge, "$lt": operator.lt, "$lte": operator.le,
}  # fmt: skip
MISSING = object()


def kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    return "text" if isinstance(value, str) else "other"


def equals(value: Any, wanted: Any) -> bool:
    if wanted is None:
        return value is MISSING or value is None
    return value is not MISSING and kind(value) == kind(wanted) and value == wanted


def matches(metadata: dict[str, Any], spec: dict[str, Any], text: str = "") -> bool:
    """The reference: the rule nestvec.store.filters documents, in plain Python."""
    for key, condition in spec.items():
        if key == "$text":
            ok = condition.lower() in text.lower()
        elif key == "$and":
            ok = all(matches(metadata, s, text) for s in condition)
        elif key == "$or":
            ok = any(matches(metadata, s, text) for s in condition)
        else:
            value = metadata.get(key, MISSING)
            ops = condition if isinstance(condition, dict) else {"$eq": condition}
            ok = all(_holds(value, op, wanted) for op, wanted in ops.items())
        if not ok:
            return False
    return True


def _holds(value: Any, op: str, wanted: Any) -> bool:
    if op in ("$eq", "$ne"):
        return equals(value, wanted) == (op == "$eq")
    if op in ("$in", "$nin"):
        return any(equals(value, w) for w in wanted) == (op == "$in")
    if op == "$contains":
        if isinstance(value, list):
            return any(kind(v) == kind(wanted) and v == wanted for v in value)
        return isinstance(value, str) and isinstance(wanted, str) and wanted in value
    same = value is not MISSING and kind(value) == kind(wanted)
    return same and ORDERS[op](value, wanted)


def random_metadata(rng: random.Random) -> dict[str, Any]:
    return {f: rng.choice(STORED) for f in FIELDS if rng.random() < 0.8}


def random_condition(rng: random.Random) -> Any:
    op = rng.choice(["plain", "$eq", "$ne", "$in", "$nin", "$contains", *ORDERS])
    if op == "$contains":
        return {op: rng.choice([*WORDS, 2, 2.5, True])}
    if op in ORDERS:
        return {op: rng.choice([v for v in SCALARS if kind(v) in ("number", "text")])}
    if op in ("$in", "$nin"):
        return {op: rng.sample(SCALARS, rng.randint(1, 3))}
    value = rng.choice(SCALARS)
    return value if op == "plain" else {op: value}


def random_filter(rng: random.Random, depth: int = 0) -> dict[str, Any]:
    if depth < 2 and rng.random() < 0.25:
        return {rng.choice(["$and", "$or"]): [random_filter(rng, depth + 1) for _ in range(rng.randint(1, 3))]}
    spec: dict[str, Any] = {f: random_condition(rng) for f in rng.sample(FIELDS, rng.randint(1, 2))}
    if rng.random() < 0.15:
        spec["$text"] = rng.choice(["binary", "APPLE", "codes", "pie"])
    return spec


DOCS = 80


@pytest.fixture(scope="module")
def typed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, dict[str, Any]]]]:
    rng = random.Random(7)
    metadata = {f"d{i}": random_metadata(rng) for i in range(DOCS)}
    folder = tmp_path_factory.mktemp("filters") / "typed"
    with nestvec.Collection.create(folder) as collection:
        collection.add([nestvec.Document(i, text_of(i), m) for i, m in metadata.items()])
    yield folder, metadata


def text_of(doc_id: str) -> str:
    return f"document {doc_id}: {TEXTS[int(doc_id[1:]) % len(TEXTS)]}"


def cases(seed: int, count: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [random_filter(rng) for _ in range(count)]


def expected(metadata: dict[str, dict[str, Any]], spec: dict[str, Any]) -> set[str]:
    return {i for i, m in metadata.items() if matches(m, spec, text_of(i))}


def test_library_filters_equal_the_reference_on_random_typed_metadata(
    typed: tuple[Path, dict[str, dict[str, Any]]],
) -> None:
    folder, metadata = typed
    with nestvec.Collection.open(folder) as collection:
        for spec in cases(seed=1, count=400):
            got = {h.id for h in collection.search("document", k=DOCS, filter=spec)}
            assert got == expected(metadata, spec), spec


def test_cross_type_comparisons_follow_the_rule() -> None:
    assert not matches({"year": "2020"}, {"year": 2020})
    assert not matches({"year": "2020"}, {"year": {"$gte": 2030}})
    assert not matches({"flag": 1}, {"flag": True})
    assert matches({"flag": 1}, {"flag": {"$ne": True}}) and matches({}, {"x": None})
    assert not matches({"tags": [1, 2]}, {"tags": {"$contains": True}})
    assert matches({"tags": ["b", "apple"]}, {"tags": {"$contains": "apple"}})
    assert matches({"note": "apple pie"}, {"note": {"$contains": "pie"}}, "")
    assert matches({}, {"$text": "BINARY"}, "binary codes")


def test_bad_filter_values_are_input_errors(typed: tuple[Path, dict[str, dict[str, Any]]]) -> None:
    with nestvec.Collection.open(typed[0]) as collection:
        for spec, words in [
            ({"a": {"$gt": True}}, "orders numbers or strings"),
            ({"a": {"$lt": None}}, "orders numbers or strings"),
            ({"a": [1]}, "expected a string, number, boolean or null"),
            ({"a": {"$in": [[1]]}}, "expected a string, number, boolean or null"),
            ({"a": {"$contains": None}}, "takes a string, number or boolean"),
            ({"$text": ""}, "takes a non-empty string"),
        ]:
            with pytest.raises(InputError, match=words):
                collection.search("x", filter=spec)


def test_cli_and_http_filter_as_the_library_does(typed: tuple[Path, dict[str, dict[str, Any]]]) -> None:
    folder, metadata = typed
    specs = cases(seed=2, count=40)
    with TestClient(create_app(ServeConfig(data_dir=folder.parent))) as client:
        for spec in specs:
            body = {"query": "document", "k": DOCS, "filter": spec}
            response = client.post(f"/collections/{folder.name}/search", json=body)
            assert response.status_code == 200, response.text
            assert {h["id"] for h in response.json()["hits"]} == expected(metadata, spec), spec
    for spec in specs[:4]:
        command = [sys.executable, "-m", "nestvec.cli.main", "search", str(folder), "document", "-k", str(DOCS)]
        done = subprocess.run([*command, "--filter", json.dumps(spec), "--json"], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-2000:]
        assert {h["id"] for h in json.loads(done.stdout)["hits"]} == expected(metadata, spec), spec
