"""A content-addressed embedding cache: (model recipe, text) -> vector, in one SQLite file, bounded.

Re-indexing unchanged documents then costs a lookup instead of a forward pass. Keys hash the
encoder's identity (weights, pooling, precision...) with the text, so a changed model never
reads another model's vectors; the least recently used entries go once `max_entries` is passed.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nestvec.encoders.base import Encoder, ModelIdentity, Wrapper, check_texts
from nestvec.errors import InputError

CACHE_FILE = "embeddings.sqlite"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS vectors (key BLOB PRIMARY KEY, vector BLOB NOT NULL, used INTEGER NOT NULL) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS vectors_by_use ON vectors(used);
"""
_LOOKUP = 500  # keys per SELECT ... IN (...): well under SQLite's bound-parameter limit


@dataclass(frozen=True)
class CacheStats:
    entries: int
    max_entries: int
    hits: int
    misses: int
    file_bytes: int


class EmbeddingCache:
    """Vectors by content key in `folder`/embeddings.sqlite; safe to share between threads and processes."""

    def __init__(self, folder: str | Path, *, max_entries: int = 1_000_000) -> None:
        if max_entries < 1:
            raise InputError(f"max_entries must be ≥ 1, got {max_entries}.")
        self.folder = Path(folder).expanduser()
        if self.folder.exists() and not self.folder.is_dir():
            raise InputError(f"The embedding cache {self.folder} is a file; give a folder (it is created if missing).")
        self.folder.mkdir(parents=True, exist_ok=True)
        self.max_entries = max_entries
        self._db = sqlite3.connect(self.folder / CACHE_FILE, check_same_thread=False, isolation_level=None)
        # A cache may lose its last writes in a crash (they are recomputed), never its consistency.
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()
        self._entries = int(self._db.execute("SELECT COUNT(*) FROM vectors").fetchone()[0])
        self.hits = self.misses = 0

    def get_many(self, keys: Sequence[bytes], dim: int) -> dict[bytes, np.ndarray]:
        found: dict[bytes, np.ndarray] = {}
        now = time.time_ns()
        with self._lock:
            for lo in range(0, len(keys), _LOOKUP):
                part = list(keys[lo : lo + _LOOKUP])
                marks = ",".join("?" * len(part))
                rows = self._db.execute(f"SELECT key, vector FROM vectors WHERE key IN ({marks})", part).fetchall()
                for key, blob in rows:
                    if len(blob) == 4 * dim:
                        found[key] = np.frombuffer(blob, dtype=np.float32)
                if rows:
                    self._db.execute(f"UPDATE vectors SET used = ? WHERE key IN ({marks})", [now, *part])
            self.hits += len(found)
            self.misses += len(keys) - len(found)
        return found

    def put_many(self, keys: Sequence[bytes], vectors: np.ndarray) -> None:
        now = time.time_ns()
        rows = [
            (key, np.ascontiguousarray(vec, dtype=np.float32).tobytes(), now)
            for key, vec in zip(keys, vectors, strict=True)
        ]
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany("INSERT OR REPLACE INTO vectors VALUES (?, ?, ?)", rows)
                self._evict()
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def _evict(self) -> None:
        # Recount first: another process sharing the file may have added or evicted entries.
        self._entries = int(self._db.execute("SELECT COUNT(*) FROM vectors").fetchone()[0])
        excess = self._entries - self.max_entries
        if excess > 0:
            self._db.execute(
                "DELETE FROM vectors WHERE key IN (SELECT key FROM vectors ORDER BY used LIMIT ?)", (excess,)
            )
            self._entries -= excess

    def stats(self) -> CacheStats:
        size = sum(p.stat().st_size for p in self.folder.glob(CACHE_FILE + "*"))
        return CacheStats(self._entries, self.max_entries, self.hits, self.misses, size)

    def close(self) -> None:
        with self._lock:
            self._db.close()


def recipe_digest(identity: ModelIdentity) -> bytes:
    """What the vectors depend on; the display name does not count."""
    fields = {k: v for k, v in identity.to_dict().items() if k != "name"}
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).digest()


class CachedEncoder(Wrapper):
    """Any encoder, with vectors looked up in an EmbeddingCache before the model runs."""

    def __init__(self, encoder: Encoder, cache: EmbeddingCache) -> None:
        super().__init__(encoder)
        self.cache = cache
        self._recipe = recipe_digest(encoder.identity)

    def key(self, text: str) -> bytes:
        return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16, key=self._recipe[:32]).digest()

    def encode(self, texts: Sequence[str], *, batch_size: int = 32, progress: bool | None = None) -> np.ndarray:
        check_texts(texts)
        keys = [self.key(t) for t in texts]
        found = self.cache.get_many(list(dict.fromkeys(keys)), self.dim)
        missing = list(dict.fromkeys(k for k in keys if k not in found))
        if missing:
            first = {k: i for i, k in reversed(list(enumerate(keys)))}
            fresh = self.inner.encode([texts[first[k]] for k in missing], batch_size=batch_size, progress=progress)
            self.cache.put_many(missing, fresh)
            found.update(zip(missing, fresh, strict=True))
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for row, key in enumerate(keys):
            out[row] = found[key]
        return out
