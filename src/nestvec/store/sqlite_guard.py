"""The store's lock, transactions and connection settings, and SQLite's failures turned into one
clear CollectionError."""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path

from nestvec.errors import CollectionError


class Guard:
    """The store's lock, which also turns SQLite's failures into one clear CollectionError.

    A failed write has rolled back by the time this sees it, so the message can say nothing was
    written; what to do depends on the cause (a full disk, a read-only folder, a damaged file).
    """

    def __init__(self, path: Path) -> None:
        self._path, self._lock = path, threading.RLock()

    def __enter__(self) -> None:
        self._lock.acquire()

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        self._lock.release()
        if isinstance(exc, sqlite3.DatabaseError):
            raise CollectionError(f"{self._path}: {advice(exc, self._path)}") from exc


def disk_full(path: Path) -> bool:
    try:
        return os.statvfs(path.parent).f_bavail == 0
    except OSError:
        return False


def advice(exc: sqlite3.DatabaseError, path: Path) -> str:
    text = str(exc)
    if "full" in text or disk_full(path):  # SQLite reports a full disk as an I/O error when mapping -shm
        return f"the disk is full ({text}); nothing was half-written. Free space and retry."
    if "readonly" in text or "read-only" in text:
        return f"the collection is read-only here ({text}); it can be searched, not written."
    if "closed database" in text:
        return "the collection is closed; open it again (Collection.open) to use it."
    if "malformed" in text or "corrupt" in text or "not a database" in text:
        return f"the store is damaged ({text}). Run `nestvec check` on the collection."
    return f"SQLite failed ({text}); nothing was half-written."


class Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self._db.execute("ROLLBACK" if exc_type else "COMMIT")


def mapped(db: sqlite3.Connection) -> sqlite3.Connection:
    """`db` reading its file through a memory map (SQLite caps the size: 2 GB in Python's build).

    A search looks up its hits' rows at random places in a file far larger than SQLite's page
    cache, and on a virtual machine a system call per page read costs more than the lookup itself
    (docs/benchmarks.md, "Against Chroma and LanceDB", session 27). Writes still go through the
    journal, and the mapped pages are the kernel's page cache, not the process's memory.
    """
    db.execute(f"PRAGMA mmap_size={1 << 40}")
    return db
