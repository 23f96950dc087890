"""Durable storage of documents, chunk vectors and metadata in SQLite (WAL, synchronous=FULL).

A write is one transaction: when `write` returns, the documents are on disk and survive a
kill -9 or a power cut; a crash mid-write leaves the previous state, never half of a batch.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from nestvec.errors import CollectionError, CollectionGoneError
from nestvec.store import rowsum
from nestvec.store.sparse import SparseSpec
from nestvec.store.sqlite_guard import Guard, Transaction, advice, disk_full, mapped

# What a search reads of its hits' chunks, in a B-tree of its own: the chunks table holds each
# vector too (two rows to a page), so hits read from it land on as many cold pages of a file
# gigabytes long; this index is a few percent of its size and stays in memory. Stores made
# before it existed get it from `compact` (seconds per million rows: too long for an open).
HITS_INDEX = 'CREATE INDEX IF NOT EXISTS chunks_hits ON chunks(label, doc_id, chunk_no, start, "end")'
SCHEMA = f"""
CREATE TABLE documents (
    id TEXT PRIMARY KEY,
    text TEXT NOT NULL,
    metadata TEXT NOT NULL,
    tokens INTEGER NOT NULL,
    truncated INTEGER NOT NULL,
    crc INTEGER  -- of the row's contents (rowsum.py); NULL in rows from before 0.3
);
CREATE TABLE chunks (
    label INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused, so a stale label can't alias a new chunk
    doc_id TEXT NOT NULL REFERENCES documents(id) ON DELETE CASCADE,
    chunk_no INTEGER NOT NULL,
    start INTEGER NOT NULL,
    "end" INTEGER NOT NULL,
    vector BLOB NOT NULL,
    version INTEGER NOT NULL,  -- the write that added it, so indexes can replay what they missed
    crc INTEGER
);
CREATE INDEX chunks_by_doc ON chunks(doc_id);
CREATE INDEX chunks_by_version ON chunks(version);
{HITS_INDEX};
-- Labels removed by each write; kept until every saved index has seen them (see prune_log).
CREATE TABLE removed (label INTEGER PRIMARY KEY, version INTEGER NOT NULL);
CREATE INDEX removed_by_version ON removed(version);
CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT INTO meta VALUES ('version', 0), ('log_floor', 0);
"""
_HIT_ROWS = 'SELECT label, doc_id, chunk_no, start, "end" FROM chunks {} WHERE '  # + the index to read, or ""
_CHUNK_ROWS = _HIT_ROWS + "label IN ({})"
_ROWS_AFTER = _HIT_ROWS + "label > ? ORDER BY label LIMIT ?"
_PUT_DOCUMENT = (
    "INSERT OR REPLACE INTO documents (id, text, metadata, tokens, truncated, crc) VALUES (?, ?, ?, ?, ?, ?)"
)
_PUT_CHUNK = 'INSERT INTO chunks (doc_id, chunk_no, start, "end", vector, version, crc) VALUES (?, ?, ?, ?, ?, ?, ?)'


class StoredDoc(NamedTuple):
    # Tuples, not frozen dataclasses, for the rows a search reads: a frozen dataclass's __init__
    # sets each field through object.__setattr__, a few microseconds a hit on a millisecond search.
    id: str
    text: str
    metadata: dict[str, Any]
    tokens: int
    truncated: bool


@dataclass(frozen=True)
class StoredChunk:
    doc_id: str
    number: int
    start: int
    end: int
    vector: np.ndarray


@dataclass(frozen=True)
class Change:
    """One committed write: its version, the chunk labels it removed and those it added."""

    version: int
    removed: list[int]
    added: list[int]


class ChunkRow(NamedTuple):
    label: int
    doc_id: str
    number: int
    start: int
    end: int


class SQLiteStore:
    """One connection guarded by a lock; safe to share between threads of one process."""

    def __init__(self, path: Path, *, create: bool = False, sparse: SparseSpec | None = None) -> None:
        """`sparse` (at creation) adds the BM25 keyword index, kept in step by triggers."""
        if not create and not path.is_file():
            raise CollectionError(f"{path} is missing: the collection is incomplete or not a collection.")
        self.path = path
        self._lock = Guard(path)
        self.read_only = not create and not os.access(path.parent, os.W_OK)
        try:
            self._db = self._connect()
            self._inode = path.stat().st_ino
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.execute("PRAGMA recursive_triggers=ON")  # so INSERT OR REPLACE fires the delete trigger
            if create:
                self._db.executescript(f"BEGIN; {SCHEMA} {sparse.ddl() if sparse else ''} COMMIT;")
            else:
                self._check_schema()
                if not self.read_only:
                    rowsum.add_columns(self._db)
            self._hits_from = self._hits_source()
        except sqlite3.DatabaseError as exc:
            if disk_full(path):
                raise CollectionError(f"{path}: {advice(exc, path)}") from exc
            raise CollectionError(f"{path} is not a readable nestvec store ({exc}).") from exc

    def _check_schema(self) -> None:
        tables = {row[0] for row in self._db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if not {"documents", "chunks", "removed", "meta"} <= tables:
            raise CollectionError(
                f"{self.path} lacks the documents/chunks/removed/meta tables; it is not a nestvec store "
                "of this format. Rebuild the collection with `nestvec index build`."
            )

    def _connect(self) -> sqlite3.Connection:
        if not self.read_only:
            db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            return mapped(db)
        # A read-only folder (a read-only mount, a backup): SQLite opens a WAL database read-only
        # through its existing -shm file; without one (a clean close folds the WAL in), nothing
        # can change the file, so it is opened as immutable.
        wal = self.path.with_name(self.path.name + "-wal")
        shm = self.path.with_name(self.path.name + "-shm")
        mode = "mode=ro" if wal.exists() and shm.exists() else "mode=ro&immutable=1"
        uri = f"{self.path.resolve().as_uri()}?{mode}"
        return mapped(sqlite3.connect(uri, uri=True, check_same_thread=False, isolation_level=None))

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def version(self) -> int:
        """Counts committed writes; an index tagged with an older version replays `changes_since`."""
        return self._meta("version")

    def log_floor(self) -> int:
        """Removals at or below this version were pruned: older indexes must be rebuilt, not replayed."""
        return self._meta("log_floor")

    def versions(self) -> tuple[int, int]:
        """(log_floor, version) read in one statement: what every search checks first."""
        with self._lock:
            found = dict(self._db.execute("SELECT key, value FROM meta WHERE key IN ('log_floor', 'version')"))
        return int(found["log_floor"]), int(found["version"])

    def _meta(self, key: str) -> int:
        with self._lock:
            return int(self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()[0])

    def _bump(self) -> int:
        self._db.execute("UPDATE meta SET value = value + 1 WHERE key = 'version'")
        return int(self._db.execute("SELECT value FROM meta WHERE key = 'version'").fetchone()[0])

    def count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM documents").fetchone()[0])

    def chunk_count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM chunks").fetchone()[0])

    def existing_ids(self, ids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        with self._lock:
            for part in _parts(list(ids)):
                marks = ",".join("?" * len(part))
                found.update(r[0] for r in self._db.execute(f"SELECT id FROM documents WHERE id IN ({marks})", part))
        return found

    def _check_present(self) -> None:
        """SQLite goes on writing into a file unlinked under it, and the write is lost with it."""
        try:
            same = self.path.stat().st_ino == self._inode
        except FileNotFoundError:
            same = False
        if not same:
            raise CollectionGoneError(
                f"{self.path.parent} was removed or replaced while open; nothing was written. "
                "Open (or create) the collection again."
            )

    def write(self, docs: Sequence[StoredDoc], chunks: Sequence[StoredChunk]) -> Change:
        """Replace `docs` and their chunks atomically."""
        self._check_present()
        with self._lock, self._transaction():
            version = self._bump()
            removed = self._log_removed(self._labels_of([d.id for d in docs]), version)
            rows = [
                (d.id, d.text, json.dumps(d.metadata, ensure_ascii=False), d.tokens, int(d.truncated)) for d in docs
            ]
            self._db.executemany(_PUT_DOCUMENT, [(*row, rowsum.document(*row)) for row in rows])
            rows_of_chunks = []
            for c in chunks:
                blob = np.ascontiguousarray(c.vector, dtype=np.float32).tobytes()
                crc = rowsum.chunk(c.doc_id, c.number, c.start, c.end, blob)
                rows_of_chunks.append((c.doc_id, c.number, c.start, c.end, blob, version, crc))
            self._db.executemany(_PUT_CHUNK, rows_of_chunks)
            added = self._last_labels(len(rows_of_chunks))
            if added:  # one cheap look that the first label is the first chunk's (else roll back)
                row = self._db.execute("SELECT doc_id, chunk_no FROM chunks WHERE label = ?", (added[0],)).fetchone()
                if row is None or tuple(row) != rows_of_chunks[0][:2]:
                    raise CollectionError(f"{self.path}: chunk labels were not assigned in order; nothing was written.")
        return Change(version, removed, added)

    def _last_labels(self, count: int) -> list[int]:
        """Labels of the `count` chunks just inserted: consecutive, since AUTOINCREMENT gives each
        insert one more than the largest label ever used, and this write transaction is the only one."""
        if count == 0:
            return []
        (last,) = self._db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'chunks'").fetchone()
        return list(range(int(last) - count + 1, int(last) + 1))

    def delete(self, ids: Sequence[str]) -> tuple[list[str], Change | None]:
        """(the ids that existed, the write that removed them; None when none existed: no write)."""
        self._check_present()
        with self._lock, self._transaction():
            found = sorted(self.existing_ids(ids))
            if not found:
                # Not a Change at today's version: applied as our own write, it would mark another
                # process's write at that version as seen (found by the racing-client test).
                return found, None
            version = self._bump()
            removed = self._log_removed(self._labels_of(found), version)
            for part in _parts(found):
                self._db.execute(f"DELETE FROM documents WHERE id IN ({','.join('?' * len(part))})", part)
        return found, Change(version, removed, [])

    def _log_removed(self, labels: list[int], version: int) -> list[int]:
        self._db.executemany("INSERT INTO removed VALUES (?, ?)", [(label, version) for label in labels])
        return labels

    def changes_since(self, version: int, dim: int) -> tuple[int, np.ndarray, Iterator[tuple[np.ndarray, np.ndarray]]]:
        """(current version, labels removed after `version`, batches of chunks added after it).

        Read in one transaction, so the three agree even while another process writes.
        """
        with self._lock:
            self._db.execute("BEGIN")
            try:
                now = self.version()
                removed = np.fromiter(
                    (r[0] for r in self._db.execute("SELECT label FROM removed WHERE version > ?", (version,))),
                    dtype=np.int64,
                )
                rows = self._db.execute(
                    "SELECT label, vector FROM chunks WHERE version > ? ORDER BY label", (version,)
                ).fetchall()
            finally:
                self._db.execute("COMMIT")
        return now, removed, _vector_batches(rows, dim)

    def prune_log(self, through: int) -> None:
        """Forget removals up to `through` once a checkpoint at that version is durable."""
        with self._lock, self._transaction():
            self._db.execute("DELETE FROM removed WHERE version <= ?", (through,))
            self._db.execute("UPDATE meta SET value = MAX(value, ?) WHERE key = 'log_floor'", (through,))

    def has_sparse(self) -> bool:
        with self._lock:
            sql = "SELECT 1 FROM sqlite_master WHERE name = 'documents_fts'"
            return self._db.execute(sql).fetchone() is not None

    def sparse_segments(self) -> int:
        """Rows of FTS5's segment storage: bounded under repeated upserts, as its merges keep it."""
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM documents_fts_data").fetchone()[0])

    def optimize_sparse(self) -> None:
        with self._lock:
            self._db.execute("INSERT INTO documents_fts(documents_fts) VALUES ('optimize')")

    def integrity_problems(self) -> list[str]:
        """SQLite's integrity and foreign-key checks, and every row against its crc32; empty when sound."""
        with self._lock:
            try:
                found = [str(r[0]) for r in self._db.execute("PRAGMA integrity_check")]
                orphans = self._db.execute("PRAGMA foreign_key_check").fetchall()
                damaged = list(rowsum.damaged(self._db)) if found == ["ok"] else []
            except (sqlite3.DatabaseError, UnicodeDecodeError) as exc:
                return [str(exc)]
        problems = [] if found == ["ok"] else found[:10]
        if damaged:
            shown = ", ".join(damaged[:5])
            problems.append(f"{len(damaged)} row(s) whose contents fail their checksum ({shown})")
        return problems + ([f"{len(orphans)} chunk(s) belong to no document"] if orphans else [])

    def keyword_problem(self) -> str | None:
        """FTS5's own check of the keyword index against the documents it indexes."""
        with self._lock:
            db = self._db
            if self.read_only:  # FTS5's check is an INSERT: run it on a copy in memory
                db = sqlite3.connect(":memory:")
                self._db.backup(db)
            try:
                db.execute("INSERT INTO documents_fts(documents_fts, rank) VALUES ('integrity-check', 1)")
            except sqlite3.DatabaseError as exc:
                return str(exc)
            finally:
                if db is not self._db:
                    db.close()
        return None

    def rebuild_keywords(self) -> None:
        with self._lock:
            self._db.execute("INSERT INTO documents_fts(documents_fts) VALUES ('rebuild')")

    def copy_to(self, target: Path) -> None:
        """A consistent copy of the whole store (a snapshot, even while others write)."""
        with self._lock:
            self._db.execute("VACUUM INTO ?", (str(target),))

    def rewrite_vectors(self, transform: Callable[[np.ndarray], np.ndarray], dim: int) -> None:
        """Replace every chunk vector by transform(vector), in one transaction."""
        labels, vectors, _ = self.all_chunks(dim)
        if not len(labels):
            return
        new = np.ascontiguousarray(transform(vectors), dtype=np.float32)
        with self._lock, self._transaction():
            sql = 'UPDATE chunks SET vector = ?1, crc = crc_of(doc_id, chunk_no, start, "end", ?1) WHERE label = ?2'
            self._db.create_function("crc_of", 5, rowsum.chunk, deterministic=True)
            self._db.executemany(sql, [(row.tobytes(), int(label)) for label, row in zip(labels, new, strict=True)])

    def vacuum(self) -> None:
        """Reclaim free pages; an older store also gets the index searches read their hits from."""
        with self._lock:
            self._db.execute(HITS_INDEX)
            self._db.execute("VACUUM")
            self._hits_from = self._hits_source()

    def _labels_of(self, ids: Sequence[str]) -> list[int]:
        labels: list[int] = []
        for part in _parts(list(ids)):
            marks = ",".join("?" * len(part))
            labels += [r[0] for r in self._db.execute(f"SELECT label FROM chunks WHERE doc_id IN ({marks})", part)]
        return labels

    def get(self, ids: Sequence[str]) -> dict[str, StoredDoc]:
        out: dict[str, StoredDoc] = {}
        with self._lock:
            for part in _parts(list(ids)):
                marks = ",".join("?" * len(part))
                for row in self._db.execute(f"SELECT * FROM documents WHERE id IN ({marks})", part):
                    out[row[0]] = _stored_doc(row)
        return out

    def _hits_source(self) -> str:
        found = self._db.execute("SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = 'chunks_hits'")
        return "INDEXED BY chunks_hits" if found.fetchone() else ""  # SQLite would take the table by rowid

    def chunk_rows(self, labels: Sequence[int]) -> dict[int, ChunkRow]:
        out: dict[int, ChunkRow] = {}
        with self._lock:
            for part in _parts(list(labels)):
                sql = _CHUNK_ROWS.format(self._hits_from, ",".join("?" * len(part)))
                out.update((row[0], ChunkRow._make(row)) for row in self._db.execute(sql, part))
        return out

    @property
    def has_hits_index(self) -> bool:
        return bool(self._hits_from)

    def chunk_rows_after(self, label: int, batch: int = 100_000) -> Iterator[list[tuple[int, str, int, int, int]]]:
        """Every chunk's (label, doc_id, number, start, end) above `label`, in label order, a batch
        per statement (the lock is not held between)."""
        while True:
            with self._lock:
                rows = self._db.execute(_ROWS_AFTER.format(self._hits_from), (label, batch)).fetchall()
            if not rows:
                return
            yield rows
            label = rows[-1][0]

    def all_chunks(self, dim: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """Every chunk's (labels, vectors, document ids), in label order."""
        with self._lock:
            rows = self._db.execute("SELECT label, vector, doc_id FROM chunks ORDER BY label").fetchall()
        labels, vectors = _decode(rows, dim)
        return labels, vectors, [r[2] for r in rows]

    def labels_where(self, where: str, params: Sequence[Any]) -> np.ndarray:
        sql = f"SELECT c.label FROM chunks c JOIN documents d ON d.id = c.doc_id WHERE {where}"
        with self._lock:
            return np.fromiter((r[0] for r in self._db.execute(sql, list(params))), dtype=np.int64)

    def page(self, where: str | None, params: Sequence[Any], offset: int, limit: int) -> list[StoredDoc]:
        """Documents by id, those matching `where` (a compiled filter over `d`) only."""
        sql = "SELECT d.id, d.text, d.metadata, d.tokens, d.truncated FROM documents d"
        sql += f" WHERE {where}" if where else ""
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY d.id LIMIT ? OFFSET ?", [*params, limit, offset]).fetchall()
        return [_stored_doc(r) for r in rows]

    def iter_documents(self) -> Iterator[StoredDoc]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM documents ORDER BY id").fetchall()
        for row in rows:
            yield _stored_doc(row)

    def _transaction(self) -> Transaction:
        return Transaction(self._db)


def _stored_doc(row: Sequence[Any]) -> StoredDoc:
    """A documents row (id, text, metadata, tokens, truncated, …) as a StoredDoc."""
    metadata = {} if row[2] == "{}" else json.loads(row[2])  # most rows: spares a search 10 decodes
    return StoredDoc(row[0], row[1], metadata, int(row[3]), bool(row[4]))


def _vector_batches(rows: list[Any], dim: int, batch: int = 8192) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    for start in range(0, len(rows), batch):
        yield _decode(rows[start : start + batch], dim)


def _decode(rows: Sequence[Any], dim: int) -> tuple[np.ndarray, np.ndarray]:
    """(labels, vectors) from (label, float32 blob, ...) rows."""
    labels = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    vectors = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32).reshape(len(rows), dim)
    return labels, vectors


def _parts(items: list[Any], size: int = 500) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
