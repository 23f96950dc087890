"""The read side of the BM25 keyword index: its own SQLite connection, and a bound on query cost.

FTS5 scores every document that matches any query term, so a long query full of common words
costs time in proportion to the postings it touches (about 1 µs each, measured on 100k texts).
`KeywordReader` keeps a query's rarest terms until a budget of postings is spent: the terms it
drops are the query's most common, the ones BM25's IDF weighs least.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

from nestvec.store.sparse import SparseSpec, search_sql
from nestvec.store.sqlite_guard import mapped


class KeywordReader:
    """BM25 searches on a read connection of their own (WAL readers never block the writer)."""

    def __init__(self, path: Path, spec: SparseSpec) -> None:
        self._path, self._spec = path, spec
        self._db: sqlite3.Connection | None = None  # opened on first use
        self._lock = threading.Lock()

    def search(self, query: str, k: int, where: str | None, params: list[Any]) -> list[tuple[str, float]]:
        """(document id, BM25 score) best first; `where` is a compiled metadata filter over `d`."""
        terms = self._spec.terms(query)
        if not terms:
            return []
        with self._lock:
            db = self._connect()
            if self._spec.max_postings is not None and len(terms) > 1:
                terms = within_budget(terms, self._postings(db, terms), self._spec.max_postings)
            rows = db.execute(search_sql(where), [self._spec.match(terms), *params, k]).fetchall()
        return [(str(r[0]), float(r[1])) for r in rows]

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def _connect(self) -> sqlite3.Connection:
        if self._db is None:
            db = mapped(sqlite3.connect(str(self._path), check_same_thread=False, isolation_level=None))
            # A scratch FTS5 table with the index's tokenizer turns query words into index terms
            # (stemmed exactly as FTS5 stems them); fts5vocab then gives each term's document count.
            db.executescript(
                f"""
CREATE VIRTUAL TABLE temp.query_text USING fts5(text, tokenize='{self._spec.tokenize}');
CREATE VIRTUAL TABLE temp.query_terms USING fts5vocab(temp, query_text, instance);
CREATE VIRTUAL TABLE temp.index_terms USING fts5vocab(main, documents_fts, row);
"""
            )
            self._db = db
        return self._db

    @staticmethod
    def _postings(db: sqlite3.Connection, terms: list[str]) -> list[int] | None:
        """Documents containing each term, or None when words and index terms don't pair up."""
        db.execute("DELETE FROM temp.query_text")
        db.execute("INSERT INTO temp.query_text(text) VALUES (?)", (" ".join(terms),))
        tokens = [str(r[0]) for r in db.execute("SELECT term FROM temp.query_terms ORDER BY offset")]
        if len(tokens) != len(terms):
            return None
        marks = ",".join("?" * len(tokens))
        counts = dict(db.execute(f"SELECT term, doc FROM temp.index_terms WHERE term IN ({marks})", tokens))
        return [int(counts.get(t, 0)) for t in tokens]


def within_budget(terms: list[str], postings: list[int] | None, budget: int) -> list[str]:
    """The rarest terms whose postings fit the budget (always at least the rarest), in query order."""
    if postings is None or sum(postings) <= budget:
        return terms
    keep: set[int] = set()
    spent = 0
    for i in sorted(range(len(terms)), key=lambda i: postings[i]):
        if keep and spent + postings[i] > budget:
            break
        keep.add(i)
        spent += postings[i]
    return [t for i, t in enumerate(terms) if i in keep]
