"""BM25 over the documents, kept by SQLite's FTS5 inside the same database as the store.

Why FTS5 rather than a separate BM25 library: its index lives in the store's own transactions
(triggers on the documents table), so an add, upsert or delete updates text, vectors and the
keyword index atomically, a crash can never leave them out of step, and metadata filters are
the very same SQL on both sides. Scoring is FTS5's built-in bm25() (k1 = 1.2, b = 0.75).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any

# Lucene's classic English stop set: removed from queries, so "the" never drives a match.
ENGLISH_STOPWORDS = frozenset(
    (
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "but",
        "by",
        "for",
        "if",
        "in",
        "into",
        "is",
        "it",
        "no",
        "not",
        "of",
        "on",
        "or",
        "such",
        "that",
        "the",
        "their",
        "then",
        "there",
        "these",
        "they",
        "this",
        "to",
        "was",
        "will",
        "with",
    )
)
STEMMERS = ("porter", "none")
STOPWORDS = ("english", "none")
_TERM = re.compile(r"[^\W_]+", re.UNICODE)


@dataclass(frozen=True)
class SparseSpec:
    """Tokenization of the keyword index: case and diacritics are always folded (unicode61)."""

    stemmer: str = "porter"
    stopwords: str = "english"
    # Bounds a query's BM25 work: its most common terms are dropped beyond this many postings
    # (see keywords.py). None scores every term.
    max_postings: int | None = 20_000

    def __post_init__(self) -> None:
        from nestvec.recipe.fields import check_part

        check_part("bm25", self)

    @property
    def tokenize(self) -> str:
        base = "unicode61 remove_diacritics 2"
        return f"porter {base}" if self.stemmer == "porter" else base

    def terms(self, query: str) -> list[str]:
        """The query's distinct words, lowercased, stop words removed."""
        terms = _TERM.findall(query.lower())
        if self.stopwords == "english":
            terms = [t for t in terms if t not in ENGLISH_STOPWORDS]
        return list(dict.fromkeys(terms))

    @staticmethod
    def match(terms: list[str]) -> str:
        """An FTS5 query matching any of the terms."""
        return " OR ".join(f'"{t}"' for t in terms)

    def ddl(self) -> str:
        return f"""
CREATE VIRTUAL TABLE documents_fts USING fts5(
    text, content='documents', content_rowid='rowid', tokenize='{self.tokenize}'
);
CREATE TRIGGER documents_fts_insert AFTER INSERT ON documents BEGIN
    INSERT INTO documents_fts(rowid, text) VALUES (new.rowid, new.text);
END;
CREATE TRIGGER documents_fts_delete AFTER DELETE ON documents BEGIN
    INSERT INTO documents_fts(documents_fts, rowid, text) VALUES ('delete', old.rowid, old.text);
END;
CREATE TRIGGER documents_fts_update AFTER UPDATE ON documents BEGIN
    INSERT INTO documents_fts(documents_fts, rowid, text) VALUES ('delete', old.rowid, old.text);
    INSERT INTO documents_fts(rowid, text) VALUES (new.rowid, new.text);
END;
"""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> SparseSpec | None:
        if data is None:
            return None
        return cls(**{k: data[k] for k in ("stemmer", "stopwords", "max_postings") if k in data})


def search_sql(where: str | None) -> str:
    """Best documents by BM25 (FTS5's bm25() is lower-is-better, so it is negated)."""
    if where is None:  # rank first, then look up only the k winners' ids
        return (
            "SELECT d.id, s.score FROM (SELECT rowid, -bm25(documents_fts) AS score FROM documents_fts "
            "WHERE documents_fts MATCH ? ORDER BY bm25(documents_fts) LIMIT ?) s "
            "JOIN documents d ON d.rowid = s.rowid ORDER BY s.score DESC"
        )
    extra = f" AND {where}"
    return (
        "SELECT d.id, -bm25(documents_fts) AS score FROM documents_fts "
        "JOIN documents d ON d.rowid = documents_fts.rowid "
        f"WHERE documents_fts MATCH ?{extra} ORDER BY bm25(documents_fts) LIMIT ?"
    )
