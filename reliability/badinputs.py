"""Bad inputs at every entry point: the library, the CLI and the HTTP server.

Each case is an input a careless or hostile user could send. The outcome must be a clear error:
- library: a NestvecError (never TypeError, KeyError, sqlite3's errors or a hang);
- CLI: a non-zero exit with a message and no Python traceback;
- HTTP: a 4xx with the JSON error body; a 5xx is a failure.
After the cases, the collection they were aimed at must still pass `check` with its documents.

Then schemathesis generates requests from the OpenAPI schema (coverage, fuzzing, and stateful
sequences through the links it infers) with one check: no 5xx.

Usage: python reliability/badinputs.py [--examples 200] [--out FILE]
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


@dataclass(frozen=True)
class Outcome:
    entry: str  # library, cli, http
    case: str
    result: str  # clear-error, accepted, crash (library/cli) or the HTTP status
    detail: str

    @property
    def failed(self) -> bool:
        return self.result == "crash" or self.result.startswith("5")


def _deep(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(levels):
        value = {"a": value}
    return value


BAD_DOCS: dict[str, Any] = {
    "empty id": {"id": "", "text": "x"},
    "blank id": {"id": "   ", "text": "x"},
    "id of 600 chars": {"id": "a" * 600, "text": "x"},
    "id with NUL": {"id": "a\x00b", "text": "x"},
    "id with newline": {"id": "a\nb", "text": "x"},
    "id is a list": {"id": ["a"], "text": "x"},
    "id is null": {"id": None, "text": "x"},
    "no id": {"text": "x"},
    "no text": {"id": "a"},
    "text empty": {"id": "a", "text": ""},
    "text whitespace": {"id": "a", "text": " \n\t "},
    "text null": {"id": "a", "text": None},
    "text number": {"id": "a", "text": 5},
    "text lone surrogate": {"id": "a", "text": "bad \ud800 text"},
    "metadata a string": {"id": "a", "text": "x", "metadata": "not an object"},
    "metadata a list": {"id": "a", "text": "x", "metadata": [1, 2]},
    "metadata NaN": {"id": "a", "text": "x", "metadata": {"v": math.nan}},
    "metadata infinity": {"id": "a", "text": "x", "metadata": {"v": math.inf}},
    "metadata 100 deep": {"id": "a", "text": "x", "metadata": _deep(100)},
    "metadata 100 KB": {"id": "a", "text": "x", "metadata": {"blob": "x" * 100_000}},
    "metadata int of 70 bits": {"id": "a", "text": "x", "metadata": {"v": 2**70}},
    "metadata lone surrogate key": {"id": "a", "text": "x", "metadata": {"\udc00": 1}},
}
BAD_FILTERS: dict[str, Any] = {
    "filter unknown operator": {"n": {"$regex": "x"}},
    "filter operator at top": {"$gt": 1},
    "filter $in not a list": {"n": {"$in": 5}},
    "filter $gt a list": {"n": {"$gt": [1]}},
    "filter 40 deep": {"$and": [_deep(40)]},
    "filter 5000 values": {"n": {"$in": list(range(5000))}},
    "filter NaN": {"n": {"$gt": math.nan}},
    "filter empty $or": {"$or": []},
    "filter $and not a list": {"$and": {"n": 1}},
    "filter field empty": {"": 1},
}


def library_cases(path: Path) -> list[Outcome]:
    import nestvec
    from nestvec import Collection
    from nestvec.errors import NestvecError
    from nestvec.eval.retrieval import evaluate_retrieval
    from nestvec.eval.tasks import evaluate_sts

    collection = Collection.open(path)
    cases: dict[str, Callable[[], Any]] = {f"add: {k}": (lambda d=d: collection.add([d])) for k, d in BAD_DOCS.items()}
    cases |= {f"search: {k}": (lambda f=f: collection.search("graph", k=5, filter=f)) for k, f in BAD_FILTERS.items()}
    cases |= {
        "add: a single dict, not a list": lambda: collection.add({"id": "a", "text": "x"}),
        "add: a string": lambda: collection.add("just text"),
        "add: duplicate ids in one batch": lambda: collection.add([{"id": "d", "text": "x"}, {"id": "d", "text": "y"}]),
        "add: an id already stored": lambda: collection.add([{"id": next(iter(collection)).id, "text": "x"}]),
        "add: batch_size 0": lambda: collection.add([{"id": "z", "text": "x"}], batch_size=0),
        "search: k 0": lambda: collection.search("graph", k=0),
        "search: k -3": lambda: collection.search("graph", k=-3),
        "search: k a string": lambda: collection.search("graph", k="5"),  # type: ignore[arg-type]
        "search: empty query": lambda: collection.search("", k=5),
        "search: query None": lambda: collection.search(None, k=5),  # type: ignore[arg-type]
        "search: query lone surrogate": lambda: collection.search("\ud800", k=5),
        "search: mode unknown": lambda: collection.search("graph", mode="fuzzy"),
        "search: filter a string": lambda: collection.search("graph", filter="n > 3"),  # type: ignore[arg-type]
        "search_batch: a string": lambda: collection.search_batch("graph"),  # type: ignore[arg-type]
        "delete: None": lambda: collection.delete(None),  # type: ignore[arg-type]
        "get: a float id": lambda: collection.get([1.5]),  # type: ignore[list-item]
        "create: unknown recipe field": lambda: Collection.create(path.parent / "n1", "minilm:colour=red"),
        "create: dims -1": lambda: Collection.create(path.parent / "n2", "minilm:dims=-1"),
        "create: dims beyond the model": lambda: Collection.create(path.parent / "n3", "minilm:dims=4096"),
        "create: unknown index": lambda: Collection.create(path.parent / "n4", index="annoy"),
        "create: unknown codes": lambda: Collection.create(path.parent / "n5", codes="int4"),
        "create: unknown model": lambda: Collection.create(path.parent / "n6", model="gpt-9"),
        "create: over an existing collection": lambda: Collection.create(path),
        "create: under a file": lambda: Collection.create(path / "store.sqlite3" / "new"),
        "open: a missing folder": lambda: Collection.open(path.parent / "missing"),
        "open: a file": lambda: Collection.open(path / "store.sqlite3"),
        "open: a folder that is not a collection": lambda: Collection.open(ROOT / "docs"),
        "load_encoder: unknown name": lambda: nestvec.load_encoder("no-such-model"),
        "load_encoder: a folder of something else": lambda: nestvec.load_encoder(str(ROOT / "docs")),
        "recipe: dims not a number": lambda: nestvec.Recipe.parse("minilm:dims=abc"),
        "recipe: no value": lambda: nestvec.Recipe.parse("minilm:dims"),
        "check: not a collection": lambda: nestvec.check_collection(ROOT / "docs"),
        "encode: a lone surrogate": lambda: nestvec.load_encoder("minilm").encode(["fine", "bad \ud800"]),
        "load_encoder: a device that does not exist": lambda: nestvec.load_encoder("minilm", device="gpu0"),
        "eval sts: one pair": lambda: evaluate_sts(_file(path.parent, "one.csv", b"a,b,3\n")),
        "eval retrieval: nothing relevant": lambda: evaluate_retrieval(_beir(path.parent, b"q1\td1\t0\n")),
    }
    outcomes = []
    for name, call in cases.items():
        try:
            call()
            outcomes.append(Outcome("library", name, "accepted", ""))
        except NestvecError as exc:
            outcomes.append(Outcome("library", name, "clear-error", str(exc)[:200]))
        except Exception as exc:  # what must not happen: a raw exception from underneath
            outcomes.append(Outcome("library", name, "crash", f"{type(exc).__name__}: {exc}"[:300]))
    collection.close()
    return outcomes


def _beir(folder: Path, qrels: bytes) -> Path:
    beir = folder / "beir"
    (beir / "qrels").mkdir(parents=True, exist_ok=True)
    _file(beir, "corpus.jsonl", b'{"_id": "d1", "text": "a graph"}\n')
    _file(beir, "queries.jsonl", b'{"_id": "q1", "text": "graph"}\n')
    _file(beir / "qrels", "test.tsv", qrels)
    return beir


def _file(folder: Path, name: str, content: bytes) -> str:
    path = folder / name
    path.write_bytes(content)
    return str(path)


def cli_cases(path: Path, folder: Path) -> list[Outcome]:
    def line(record: dict[str, Any]) -> bytes:
        return (json.dumps(record) + "\n").encode()

    good = line({"id": "fine-1", "text": "a valid first record"})
    cases = {
        "add: invalid JSON on line 2": ["add", str(path), _file(folder, "a.jsonl", good + b"{not json\n")],
        "add: a JSON array line": ["add", str(path), _file(folder, "b.jsonl", good + b"[1, 2]\n")],
        "add: missing text": ["add", str(path), _file(folder, "c.jsonl", good + line({"id": "x"}))],
        "add: bad UTF-8": ["add", str(path), _file(folder, "d.jsonl", good + b'{"id": "x", "text": "\xff\xfe"}\n')],
        "add: NaN metadata": [
            "add",
            str(path),
            _file(folder, "e.jsonl", good + b'{"id": "x", "text": "t", "v": NaN}\n'),
        ],
        "add: 100-deep metadata": [
            "add",
            str(path),
            _file(folder, "f.jsonl", good + line({"id": "x", "text": "t", "m": _deep(100)})),
        ],
        "add: id of 600 chars": [
            "add",
            str(path),
            _file(folder, "g.jsonl", good + line({"id": "i" * 600, "text": "t"})),
        ],
        "add: duplicate ids in the file": ["add", str(path), _file(folder, "h.jsonl", good + good)],
        "add: unknown extension": ["add", str(path), _file(folder, "i.xml", b"<doc/>")],
        "add: missing file": ["add", str(path), str(folder / "nope.jsonl")],
        "add: CSV with an extra field": ["add", str(path), _file(folder, "j.csv", b"id,text\na,b,c\n")],
        "add: not a collection": ["add", str(folder / "nowhere"), _file(folder, "k.jsonl", good)],
        "search: k 0": ["search", str(path), "graph", "-k", "0"],
        "search: empty query": ["search", str(path), ""],
        "search: filter not JSON": ["search", str(path), "graph", "--filter", "{n>3"],
        "search: filter unknown operator": ["search", str(path), "graph", "--filter", '{"n": {"$regex": 1}}'],
        "search: unknown mode": ["search", str(path), "graph", "--mode", "fuzzy"],
        "index build: unknown codes": [
            "index",
            "build",
            _file(folder, "l.jsonl", good),
            str(folder / "new"),
            "--codes",
            "int4",
        ],
        "index build: under a file": [
            "index",
            "build",
            _file(folder, "m.jsonl", good),
            str(folder / "m.jsonl" / "new"),
        ],
        "check: not a collection": ["check", str(folder)],
        "serve: public host without keys": ["serve", "--host", "0.0.0.0", "--port", "1"],
        "train: output under a file": [
            "train",
            str(folder / "m.jsonl" / "out"),
            "--data",
            _file(folder, "p.jsonl", good),
        ],
        "eval sts: one pair": ["eval", "sts", _file(folder, "one.csv", b"a,b,3\n")],
        "vectors convert: a NaN": [
            "vectors",
            "convert",
            _file(folder, "nan.vec", b"2 2\ncat 0.1 0.2\ndog nan 0.3\n"),
            str(folder / "vectors"),
        ],
        "serve: data dir a file": ["serve", "--data-dir", _file(folder, "n.txt", b"x"), "--port", "0"],
    }
    outcomes = []
    for name, args in cases.items():
        done = subprocess.run(
            [sys.executable, "-m", "nestvec.cli.main", *args], capture_output=True, text=True, cwd=ROOT, timeout=300
        )
        shown = (done.stderr or done.stdout).strip().splitlines()
        if "Traceback" in done.stderr or (done.returncode != 0 and not shown):
            result = "crash"
        else:
            result = "clear-error" if done.returncode != 0 else "accepted"
        outcomes.append(Outcome("cli", name, result, f"exit {done.returncode}: {' | '.join(shown[-2:])[:200]}"))
    return outcomes


def http_cases(url: str) -> list[Outcome]:
    import httpx

    col = "/collections/papers"
    nan_body = b'{"documents": [{"id": "n", "text": "t", "metadata": {"v": NaN}}]}'
    json_cases: dict[str, tuple[str, str, Any]] = {
        f"documents: {k}": ("POST", f"{col}/documents", {"documents": [d]})
        for k, d in BAD_DOCS.items()
        if k not in ("metadata NaN", "metadata infinity", "text lone surrogate", "metadata lone surrogate key")
    }
    json_cases |= {
        f"search: {k}": ("POST", f"{col}/search", {"query": "graph", "filter": f})
        for k, f in BAD_FILTERS.items()
        if k != "filter NaN"
    }
    json_cases |= {
        "documents: empty list": ("POST", f"{col}/documents", {"documents": []}),
        "documents: not a list": ("POST", f"{col}/documents", {"documents": {"id": "a"}}),
        "documents: 3000 of them": (
            "POST",
            f"{col}/documents",
            {"documents": [{"id": str(i), "text": "t"} for i in range(3000)]},
        ),
        "documents: duplicate ids": ("POST", f"{col}/documents", {"documents": [{"id": "d", "text": "x"}] * 2}),
        "search: k 0": ("POST", f"{col}/search", {"query": "graph", "k": 0}),
        "search: k 10^12": ("POST", f"{col}/search", {"query": "graph", "k": 10**12}),
        "search: k a string": ("POST", f"{col}/search", {"query": "graph", "k": "ten"}),
        "search: empty query": ("POST", f"{col}/search", {"query": ""}),
        "search: query a list": ("POST", f"{col}/search", {"query": ["a", "b"]}),
        "search: unknown mode": ("POST", f"{col}/search", {"query": "graph", "mode": "fuzzy"}),
        "search: unknown field": ("POST", f"{col}/search", {"query": "graph", "colour": "red"}),
        "search: unknown collection": ("POST", "/collections/nope/search", {"query": "graph"}),
        "delete: ids empty": ("POST", f"{col}/documents/delete", {"ids": []}),
        "delete: ids numbers": ("POST", f"{col}/documents/delete", {"ids": [1, 2]}),
        "create: bad name": ("POST", "/collections", {"name": "../etc"}),
        "create: name of 200 chars": ("POST", "/collections", {"name": "n" * 200}),
        "create: bad recipe": ("POST", "/collections", {"name": "fresh", "recipe": "dims=abc"}),
        "create: unknown index": ("POST", "/collections", {"name": "fresh", "index": "annoy"}),
        "create: existing name": ("POST", "/collections", {"name": "papers"}),
        "create: recipe names an unknown model": ("POST", "/collections", {"name": "m1", "recipe": "/etc:dims=5"}),
        "create: recipe asks another compute": (
            "POST",
            "/collections",
            {"name": "m2", "recipe": "minilm:compute=int8"},
        ),
        "create: model and recipe differ": (
            "POST",
            "/collections",
            {"name": "m3", "model": "minilm", "recipe": "smollm2"},
        ),
        "embeddings: token ids": ("POST", "/v1/embeddings", {"input": [[1, 2, 3]], "model": "minilm"}),
        "embeddings: empty list": ("POST", "/v1/embeddings", {"input": [], "model": "minilm"}),
        "embeddings: empty text": ("POST", "/v1/embeddings", {"input": "", "model": "minilm"}),
        "embeddings: dimensions 0": ("POST", "/v1/embeddings", {"input": "x", "model": "minilm", "dimensions": 0}),
        "embeddings: dimensions 5000": (
            "POST",
            "/v1/embeddings",
            {"input": "x", "model": "minilm", "dimensions": 5000},
        ),
        "embeddings: unknown model": ("POST", "/v1/embeddings", {"input": "x", "model": "gpt-9"}),
        "embeddings: unknown format": (
            "POST",
            "/v1/embeddings",
            {"input": "x", "model": "minilm", "encoding_format": "hex"},
        ),
        "embeddings: 3000 texts": ("POST", "/v1/embeddings", {"input": ["x"] * 3000, "model": "minilm"}),
        "embeddings: a text of 200k chars": ("POST", "/v1/embeddings", {"input": "word " * 40_000, "model": "minilm"}),
        "get: id of 600 chars": ("GET", f"{col}/documents/{'i' * 600}", None),
        "get: id %00": ("GET", f"{col}/documents/a%00b", None),
        "get: traversal": ("GET", "/collections/..%2F..%2Fetc/documents/passwd", None),
        "delete collection: unknown": ("DELETE", "/collections/nope", None),
    }
    raw_cases: dict[str, tuple[str, str, bytes, str]] = {
        "body: not JSON": ("POST", f"{col}/search", b"{query: graph", "application/json"),
        "body: a JSON array": ("POST", f"{col}/search", b"[1, 2]", "application/json"),
        "body: NaN literal in metadata": ("POST", f"{col}/documents", nan_body, "application/json"),
        "body: lone surrogate escape": ("POST", f"{col}/search", b'{"query": "bad \\ud800"}', "application/json"),
        "body: lone surrogate in a document": (
            "POST",
            f"{col}/documents",
            b'{"documents": [{"id": "s", "text": "\\udc00"}]}',
            "application/json",
        ),
        "body: invalid UTF-8": ("POST", f"{col}/search", b'{"query": "\xff\xfe"}', "application/json"),
        "body: form data": ("POST", f"{col}/search", b"query=graph", "application/x-www-form-urlencoded"),
        "body: 9 MB": ("POST", "/v1/embeddings", b'{"input": "' + b"x" * 9_000_000 + b'"}', "application/json"),
        "body: 1e400 number": ("POST", f"{col}/search", b'{"query": "graph", "k": 1e400}', "application/json"),
        "body: 10000-deep JSON": (
            "POST",
            f"{col}/search",
            b'{"query": "g", "filter": ' + b'{"a": ' * 10000 + b"1" + b"}" * 10001,
            "application/json",
        ),
    }
    outcomes = []
    with httpx.Client(base_url=url, timeout=120) as http:
        for name, (method, path, body) in json_cases.items():
            response = http.request(method, path, json=body)
            outcomes.append(Outcome("http", name, str(response.status_code), response.text[:200]))
        for name, (method, path, raw, kind) in raw_cases.items():
            response = http.request(method, path, content=raw, headers={"content-type": kind})
            outcomes.append(Outcome("http", name, str(response.status_code), response.text[:200]))
        outcomes.append(
            Outcome("http", "method: PUT on search", str((r := http.put(f"{col}/search")).status_code), r.text[:200])
        )
    return outcomes


def schemathesis(url: str, workdir: Path, *, examples: int) -> dict[str, Any]:
    """Schemathesis's generated requests (coverage, fuzzing, and stateful sequences through the
    links it infers between operations) with one check: no 5xx."""
    import re

    st = Path(sys.executable).with_name("st")
    command = [str(st), "run", f"{url}/openapi.json", "--checks", "not_a_server_error", "--max-examples", str(examples)]
    command += ["--seed", "7", "--request-timeout", "60", "--no-color"]
    done = subprocess.run(command, capture_output=True, text=True, cwd=workdir, timeout=1800)
    cases = re.search(r"(\d+) generated, (\d+) passed", done.stdout)
    scenarios = re.search(r"Scenarios:\s+(\d+)", done.stdout)
    return {
        "command": " ".join(["st", *command[1:]]),
        "exit": done.returncode,
        "generated": int(cases.group(1)) if cases else None,
        "passed": int(cases.group(2)) if cases else None,
        "stateful_scenarios": int(scenarios.group(1)) if scenarios else None,
        "tail": done.stdout[-1500:] if done.returncode else "",
    }


def run_bad_inputs(workdir: Path, *, examples: int = 0) -> tuple[list[Outcome], bool, dict[str, Any]]:
    import nestvec
    from tests.conftest import paper_docs
    from tests.serving import serve_process

    path = workdir / "papers"
    with nestvec.Collection.create(path, bm25=True) as collection:
        collection.add([nestvec.Document(d.id, d.text, {**d.metadata, "n": i}) for i, d in enumerate(paper_docs(60))])
    outcomes = library_cases(path)
    outcomes += cli_cases(path, workdir)
    (workdir / "data").mkdir()
    generated: dict[str, Any] = {}
    with serve_process([str(path), "--data-dir", str(workdir / "data")], log=workdir / "server.log") as url:
        outcomes += http_cases(url)
        if examples:
            generated = schemathesis(url, workdir, examples=examples)
    with nestvec.Collection.open(path) as collection:
        intact = nestvec.check_collection(path, model=False).ok and collection.count() >= 60
    return outcomes, intact, generated


def summary(outcomes: list[Outcome], intact: bool) -> dict[str, Any]:
    per_entry = {}
    for entry in ("library", "cli", "http"):
        mine = [o for o in outcomes if o.entry == entry]
        per_entry[entry] = {
            "cases": len(mine),
            "outcomes": dict(Counter(o.result for o in mine).most_common()),
            "failures": [f"{o.case}: {o.detail}" for o in mine if o.failed],
            "accepted": [o.case for o in mine if o.result in ("accepted", "200", "201")],
        }
    server_errors = sum(o.result.startswith("5") for o in outcomes if o.entry == "http")
    return {"per_entry": per_entry, "http_5xx": server_errors, "collection_intact": intact}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=200, help="schemathesis examples per operation (0: skip)")
    parser.add_argument("--out", type=Path, default=ROOT / "reliability" / "results" / "badinputs.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="nestvec-bad-") as tmp:
        outcomes, intact, generated = run_bad_inputs(Path(tmp), examples=args.examples)
    result = {
        "command": "python " + " ".join([str(Path(__file__).relative_to(ROOT)), *sys.argv[1:]]),
        "summary": summary(outcomes, intact),
        "schemathesis": generated,
        "cases": [asdict(o) for o in outcomes],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result["summary"], indent=1))
    print(json.dumps(generated, indent=1))
    sys.exit(0 if intact and not any(o.failed for o in outcomes) and generated.get("exit", 0) == 0 else 1)


if __name__ == "__main__":
    main()
