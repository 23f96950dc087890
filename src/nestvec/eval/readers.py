"""Readers for evaluation data: text pairs with scores or labels, labelled texts, BEIR folders.

Every malformed record is reported with its file and line; nothing is silently dropped.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from nestvec.errors import InputFileError

Column = int | str
JSONL = (".jsonl", ".ndjson")
# Header names each column role goes by in the files people have (MTEB / Hugging Face exports, SNLI,
# Quora duplicates, sentence-transformers' pair sets): a file with them needs no --columns.
TEXT1 = frozenset({"sentence1", "sentence_1", "text1", "text_1", "s1", "sentence_a", "question1", "premise", "anchor"})
TEXT2 = frozenset(
    {"sentence2", "sentence_2", "text2", "text_2", "s2", "sentence_b", "question2", "hypothesis", "positive"}
)
SCORE = frozenset({"score", "similarity", "similarity_score", "relatedness_score", "gold", "label"})
LABEL = frozenset({"label", "is_duplicate", "is_paraphrase", "score"})
TEXT = frozenset({"text", "sentence", "document", "content"})
CLASS = frozenset({"label", "class", "category", "topic"})


@dataclass(frozen=True)
class Pairs:
    """Text pairs with a gold value each: a similarity score (STS) or a 0/1 label."""

    path: Path
    texts1: list[str]
    texts2: list[str]
    values: list[float]


@dataclass(frozen=True)
class Labelled:
    path: Path
    texts: list[str]
    labels: list[str]


@dataclass(frozen=True)
class BEIR:
    """A retrieval set: corpus id -> (title, text), query id -> text, query id -> {doc id: grade}."""

    path: Path
    corpus: dict[str, tuple[str, str]]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]


def _rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    if not path.is_file():
        raise InputFileError(path, None, "no such file.")
    if path.suffix.lower() in JSONL:
        yield from _jsonl_rows(path)
        return
    delimiter = "\t" if path.suffix.lower() in (".tsv", ".tab") else ","

    def lines() -> Iterator[str]:
        with path.open("rb") as fh:
            for number, raw in enumerate(fh, start=1):
                try:
                    yield raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise InputFileError(path, number, f"invalid UTF-8 ({exc.reason}).") from exc

    reader = csv.reader(lines(), delimiter=delimiter, quoting=csv.QUOTE_MINIMAL)
    try:
        for row in reader:
            if any(cell.strip() for cell in row):
                yield reader.line_num, row
    except csv.Error as exc:
        raise InputFileError(
            path, reader.line_num, f"malformed {'TSV' if delimiter == chr(9) else 'CSV'} ({exc})."
        ) from exc


def _jsonl_rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    """JSON lines as a table: the first object's keys are the header (line 1), every object's
    values in that order; numbers and booleans become their text, as a CSV cell would hold them."""
    keys: list[str] | None = None
    for line, record in _jsonl(path, ids=()):
        if keys is None:
            keys = list(record)
            yield 1, keys
        if missing := [k for k in keys if k not in record]:
            raise InputFileError(path, line, f"field {missing[0]!r} is missing (the first record has {keys}).")
        yield line, [_jsonl_cell(path, line, k, record[k]) for k in keys]


def _jsonl_cell(path: Path, line: int, key: str, value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return str(int(value))  # a 0/1 label written as false/true
    if isinstance(value, int | float):
        return repr(value)
    raise InputFileError(path, line, f"field {key!r} holds a {type(value).__name__}; expected a string or a number.")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _table(
    path: Path, columns: tuple[Column, ...] | None, header: bool | None, roles: tuple[frozenset[str], ...]
) -> Iterator[tuple[int, list[str]]]:
    """Rows projected onto `columns` (indexes, or names from the header); without `columns`, the
    header's columns named as `roles` (sentence1 / sentence2 / score…), else the first ones in
    order. Header auto-detected: a first row whose last role's cell is not a number (STS, pairs),
    or that names a role (labelled texts); JSON lines always have one."""
    rows = _rows(path)
    first = next(rows, None)
    if first is None:
        raise InputFileError(path, None, "the file is empty; expected one record per line.")
    if path.suffix.lower() in JSONL:
        header = True
    elif header is None:
        header = any(isinstance(c, str) for c in columns or ()) or _looks_like_header(path, first, columns, roles)
    names = [c.strip() for c in first[1]] if header else None
    if columns is None:
        columns = _by_role(names, roles) or tuple(range(len(roles)))
    indexes = [_index(c, names, path) for c in columns]
    body = rows if header else _chain(first, rows)
    count = 0
    for line, row in body:
        yield line, [_cell(path, (line, row), i) for i in indexes]
        count += 1
    if count == 0:
        raise InputFileError(path, None, "the file has a header but no records.")


def _by_role(names: list[str] | None, roles: tuple[frozenset[str], ...]) -> tuple[Column, ...] | None:
    """The header's column for every role (case-insensitive), or None unless all are there."""
    if names is None:
        return None
    lowered = [n.lower() for n in names]
    found = [next((names[i] for i, n in enumerate(lowered) if n in role), None) for role in roles]
    return None if None in found else tuple(c for c in found if c is not None)


def _looks_like_header(
    path: Path, first: tuple[int, list[str]], columns: tuple[Column, ...] | None, roles: tuple[frozenset[str], ...]
) -> bool:
    cells = [c.strip().lower() for c in first[1]]
    if roles[-1] in (SCORE, LABEL):  # a numeric last role: a header is a row where it is not a number
        last = columns[-1] if columns else len(roles) - 1
        if _by_role(cells, roles) is not None:
            return True
        return not _is_number(_cell(path, first, _index(last, None, path)))
    return any(cell in role for cell in cells for role in roles)


def _chain(first: tuple[int, list[str]], rest: Iterator[tuple[int, list[str]]]) -> Iterator[tuple[int, list[str]]]:
    yield first
    yield from rest


def _index(column: Column, names: list[str] | None, path: Path) -> int:
    if isinstance(column, int):
        return column
    if names is None or column not in names:
        raise InputFileError(path, 1, f"no column named {column!r}; the header has {names}.")
    return names.index(column)


def _cell(path: Path, numbered: tuple[int, list[str]], index: int) -> str:
    line, row = numbered
    if index >= len(row):
        raise InputFileError(path, line, f"expected at least {index + 1} columns, found {len(row)}.")
    return row[index]


def _text(path: Path, line: int, value: str) -> str:
    if not value.strip():
        raise InputFileError(path, line, "empty text.")
    return value


def read_sts(
    path: str | Path,
    *,
    columns: tuple[Column, Column, Column] | None = None,
    header: bool | None = None,
    score_range: tuple[float, float] = (0.0, 5.0),
) -> Pairs:
    """STS pairs: two texts and a similarity score within `score_range`."""
    path = Path(path)
    low, high = score_range
    texts1, texts2, scores = [], [], []
    for line, (a, b, raw) in _table(path, columns, header, (TEXT1, TEXT2, SCORE)):
        if not _is_number(raw):
            raise InputFileError(path, line, f"score {raw!r} is not a number.")
        score = float(raw)
        if not low <= score <= high:
            raise InputFileError(
                path, line, f"score {score} is outside {low}–{high}. Set the range with --score-range LOW,HIGH."
            )
        texts1.append(_text(path, line, a))
        texts2.append(_text(path, line, b))
        scores.append(score)
    if len(set(scores)) < 2:  # a rank correlation needs scores that differ
        found = f"{len(scores)} pair(s)" + (f", every score {scores[0]}" if scores else "")
        raise InputFileError(path, None, f"STS needs at least two pairs with different scores; found {found}.")
    return Pairs(path, texts1, texts2, scores)


def read_pair_labels(
    path: str | Path, *, columns: tuple[Column, Column, Column] | None = None, header: bool | None = None
) -> Pairs:
    """Pair classification: two texts and a 0/1 label (1 = duplicate / paraphrase)."""
    path = Path(path)
    texts1, texts2, labels = [], [], []
    for line, (a, b, raw) in _table(path, columns, header, (TEXT1, TEXT2, LABEL)):
        if raw.strip() not in ("0", "1", "0.0", "1.0"):
            raise InputFileError(path, line, f"label {raw!r} is not 0 or 1.")
        texts1.append(_text(path, line, a))
        texts2.append(_text(path, line, b))
        labels.append(float(raw))
    if len(set(labels)) < 2:
        raise InputFileError(path, None, "all labels are the same; pair classification needs both 0 and 1.")
    return Pairs(path, texts1, texts2, labels)


def read_labelled(
    path: str | Path, *, columns: tuple[Column, Column] | None = None, header: bool | None = None
) -> Labelled:
    """Texts with a class label (classification, clustering). Header auto-detected by a 'text' cell."""
    path = Path(path)
    rows = list(_table(path, columns, header, (TEXT, CLASS)))
    for line, (text, label) in rows:
        _text(path, line, text)
        if not label.strip():
            raise InputFileError(path, line, "empty label.")
    labels = [label.strip() for _, (_, label) in rows]
    if len(set(labels)) < 2:
        raise InputFileError(path, None, f"found {len(set(labels))} distinct label(s); at least 2 are needed.")
    return Labelled(path, [text for _, (text, _) in rows], labels)


def _jsonl(path: Path, ids: tuple[str, ...] = ("_id",)) -> Iterator[tuple[int, dict[str, object]]]:
    """Numbered JSON objects of a .jsonl file, each with one of the `ids` fields (kept as '_id');
    with no `ids`, any object."""
    if not path.is_file():
        raise InputFileError(
            path, None, "no such file (expected the BEIR layout: corpus.jsonl, queries.jsonl, qrels/<split>.tsv)."
        )
    with path.open("rb") as fh:
        for number, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                row = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise InputFileError(path, number, f"not valid UTF-8 JSON ({exc}).") from exc
            if not ids:
                if not isinstance(row, dict):
                    raise InputFileError(path, number, f"expected a JSON object, found {type(row).__name__}.")
                yield number, row
                continue
            key = next((k for k in ids if isinstance(row, dict) and k in row), None)
            if key is None:
                wanted = " or ".join(f"'{k}'" for k in ids)
                raise InputFileError(path, number, f"expected a JSON object with an {wanted} field.")
            yield number, {**row, "_id": row[key]}


def read_beir(folder: str | Path, *, split: str = "test") -> BEIR:
    """A BEIR folder. Qrels naming unknown documents or queries are errors, not skipped."""
    folder = Path(folder)
    corpus = {
        str(r["_id"]): (str(r.get("title") or ""), str(r.get("text") or "")) for _, r in _jsonl(folder / "corpus.jsonl")
    }
    queries = read_queries(folder / "queries.jsonl")
    if not corpus:
        raise InputFileError(folder / "corpus.jsonl", None, "the corpus is empty.")
    qrels = read_qrels(folder / "qrels" / f"{split}.tsv", queries=set(queries), corpus=set(corpus))
    return BEIR(folder, corpus, queries, qrels)


def read_queries(path: str | Path) -> dict[str, str]:
    """Queries by id: .jsonl ({"_id"|"id": ..., "text": ...}, as BEIR has them) or .txt (one per line,
    numbered from 1)."""
    path = Path(path)
    if path.suffix == ".txt":
        if not path.is_file():
            raise InputFileError(path, None, "no such file.")
        lines = enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        queries = {str(number): line.strip() for number, line in lines if line.strip()}
    else:
        queries = {str(r["_id"]): str(r.get("text") or "") for _, r in _jsonl(path, ids=("_id", "id"))}
    if not queries:
        raise InputFileError(path, None, "no queries found.")
    return queries


def read_qrels(
    path: Path,
    *,
    queries: set[str],
    corpus: set[str],
    queries_name: str = "queries.jsonl",
    corpus_name: str = "corpus.jsonl",
) -> dict[str, dict[str, int]]:
    """TSV judgments (query-id, corpus-id, integer relevance; a header line is allowed).

    Judgments naming unknown documents or queries are errors, not skipped.
    """
    qrels: dict[str, dict[str, int]] = {}
    for line, row in _rows(path):
        if len(row) < 3:
            raise InputFileError(path, line, f"expected query-id, corpus-id, score; found {len(row)} column(s).")
        qid, did, raw = row[0].strip(), row[1].strip(), row[2].strip()
        if line == 1 and not raw.lstrip("-").isdigit():
            continue  # header
        if not raw.lstrip("-").isdigit():
            raise InputFileError(path, line, f"relevance {raw!r} is not an integer.")
        if did not in corpus:
            raise InputFileError(path, line, f"corpus-id {did!r} is not in {corpus_name}.")
        if qid not in queries:
            raise InputFileError(path, line, f"query-id {qid!r} is not in {queries_name}.")
        qrels.setdefault(qid, {})[did] = int(raw)
    if not qrels:
        raise InputFileError(path, None, "no relevance judgments found.")
    if not any(grade > 0 for judged in qrels.values() for grade in judged.values()):
        # every metric would read 0.00, as if the model had failed
        raise InputFileError(path, None, "no judgment marks a document relevant (every relevance is 0 or less).")
    return qrels
