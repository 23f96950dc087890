"""A crc32 of every stored row, so that check finds damage SQLite itself cannot see.

SQLite checksums none of a page's cell contents: a flipped byte in a document's text, its
metadata or a chunk's vector reads back as valid data, and `PRAGMA integrity_check` passes.
The store keeps a crc32 of each row's contents beside it; stores from before 0.3 get the
column on their next writable open and leave it NULL (unverified) for rows written before.
"""

from __future__ import annotations

import sqlite3
import zlib
from collections.abc import Iterator

COLUMNS = {"documents": "crc", "chunks": "crc"}


def document(doc_id: str, text: str, metadata: str, tokens: int, truncated: int) -> int:
    return zlib.crc32(f"{doc_id}\0{text}\0{metadata}\0{tokens}\0{truncated}".encode("utf-8", "surrogatepass"))


def chunk(doc_id: str, number: int, start: int, end: int, vector: bytes) -> int:
    return zlib.crc32(vector, zlib.crc32(f"{doc_id}\0{number}\0{start}\0{end}".encode("utf-8", "surrogatepass")))


def add_columns(db: sqlite3.Connection) -> None:
    """Give an older store the crc columns (metadata only in SQLite: instant at any size)."""
    for table, column in COLUMNS.items():
        present = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
        if column not in present:
            db.execute(f"ALTER TABLE {table} ADD COLUMN {column} INTEGER")


def damaged(db: sqlite3.Connection) -> Iterator[str]:
    """A line for each document or chunk whose contents no longer match their crc32."""
    for row in db.execute("SELECT id, text, metadata, tokens, truncated, crc FROM documents WHERE crc IS NOT NULL"):
        if document(*row[:5]) != row[5]:
            yield f"document {row[0]!r}"
    sql = 'SELECT doc_id, chunk_no, start, "end", vector, crc, label FROM chunks WHERE crc IS NOT NULL'
    for row in db.execute(sql):
        if chunk(*row[:5]) != row[5]:
            yield f"chunk {row[6]} of {row[0]!r}"
