"""PostgreSQL with pgvector: one table keyed by chunk label (`id bigint primary key, doc_id,
chunk, text, metadata jsonb, embedding vector(D)`), the state record in the table's comment,
searched by inner product (`<#>`). `index` "hnsw" or "ivfflat" builds pgvector's index;
`quantization` "halfvec" or "bit" indexes `embedding::halfvec` or `binary_quantize(embedding)`
instead and re-ranks the index's candidates with the full vectors (the `postgres` extra).
"""

from __future__ import annotations

import json
import re

import numpy as np

from nestvec.errors import InputError, MissingExtraError
from nestvec.export.feed import Rows
from nestvec.export.targets import TargetState

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_INDEXES = (None, "hnsw", "ivfflat")
_QUANTIZATIONS = (None, "halfvec", "bit")


def _literal(vector: np.ndarray) -> str:
    return "[" + ",".join(repr(float(x)) for x in vector) + "]"


class PostgresTarget:
    def __init__(self, where: str, *, index: str | None = None, quantization: str | None = None) -> None:
        try:
            import psycopg
        except ImportError as exc:
            raise MissingExtraError("psycopg", "postgres", "Exporting to PostgreSQL") from exc
        conninfo, _, table = where.partition("#")
        self.url, self.table = f"postgresql://{where}", table or "nestvec_vectors"
        if not _NAME.match(self.table):
            raise InputError(f"A table name is letters, digits and _ (up to 63), got {self.table!r}.")
        if index not in _INDEXES or quantization not in _QUANTIZATIONS:
            raise InputError(
                f"PostgreSQL index is hnsw or ivfflat and quantization halfvec or bit; got {index!r}, {quantization!r}."
            )
        self.index, self.quantization = index or ("hnsw" if quantization else None), quantization
        self._depth: int | None = None  # the search depth the session's ef_search was set for
        try:
            self._db = psycopg.connect("postgresql://" + conninfo, connect_timeout=10)
            self._db.execute("CREATE EXTENSION IF NOT EXISTS vector")
            self._db.commit()
        except psycopg.Error as exc:
            raise InputError(f"Could not reach the PostgreSQL target {self.url}: {str(exc).strip()}") from exc

    def state(self) -> TargetState | None:
        found = self._db.execute(
            "SELECT obj_description(c.oid, 'pg_class') FROM pg_class c WHERE c.relname = %s AND c.relkind = 'r'",
            (self.table,),
        ).fetchone()
        self._db.commit()
        if found is None:
            return None
        try:
            return TargetState.from_dict(json.loads(found[0])["nestvec"])
        except (TypeError, ValueError, KeyError):  # a table nestvec did not write
            return TargetState.foreign()

    def create(self, state: TargetState) -> None:
        t = self.table
        with self._db.transaction():  # the old table stays until the new one is whole
            self._db.execute(f"DROP TABLE IF EXISTS {t}")
            self._db.execute(
                f"CREATE TABLE {t} (id bigint PRIMARY KEY, doc_id text NOT NULL, chunk integer NOT NULL, "
                f"text text NOT NULL, metadata jsonb NOT NULL, embedding vector({state.dim}) NOT NULL)"
            )
            self._comment(state)

    def _comment(self, state: TargetState) -> None:
        text = json.dumps({"nestvec": state.to_dict()}).replace("'", "''")
        self._db.execute(f"COMMENT ON TABLE {self.table} IS '{text}'")

    def upsert(self, rows: Rows) -> None:
        sql = (
            f"INSERT INTO {self.table} (id, doc_id, chunk, text, metadata, embedding) "
            "VALUES (%s, %s, %s, %s, %s, %s::vector) ON CONFLICT (id) DO UPDATE SET doc_id = EXCLUDED.doc_id, "
            "chunk = EXCLUDED.chunk, text = EXCLUDED.text, metadata = EXCLUDED.metadata, embedding = EXCLUDED.embedding"
        )
        values = [
            (int(label), d, c, t, json.dumps(m, ensure_ascii=False), _literal(v))
            for label, d, c, t, m, v in zip(
                rows.labels, rows.doc_ids, rows.chunks, rows.texts, rows.metadata, rows.vectors, strict=True
            )
        ]
        with self._db.transaction(), self._db.cursor() as cursor:
            cursor.executemany(sql, values)

    def delete(self, labels: list[int]) -> None:
        with self._db.transaction():
            self._db.execute(f"DELETE FROM {self.table} WHERE id = ANY(%s)", ([int(x) for x in labels],))

    def commit(self, state: TargetState) -> None:
        with self._db.transaction():
            if self.index:
                self._db.execute(
                    f"CREATE INDEX IF NOT EXISTS {self.table}_ann ON {self.table} {self._index_sql(state.dim)}"
                )
            self._comment(state)

    def _expression(self, dim: int) -> tuple[str, str]:
        if self.quantization == "halfvec":
            return f"(embedding::halfvec({dim}))", "halfvec_ip_ops"
        if self.quantization == "bit":
            return f"(binary_quantize(embedding)::bit({dim}))", "bit_hamming_ops"
        return "embedding", "vector_ip_ops"

    def _index_sql(self, dim: int) -> str:
        column, ops = self._expression(dim)
        return f"USING {self.index} ({column} {ops})"

    def count(self) -> int:
        found = self._db.execute(f"SELECT count(*) FROM {self.table}").fetchone()
        self._db.commit()
        return int(found[0]) if found else 0

    def search(self, vectors: np.ndarray, k: int) -> list[list[tuple[int, float]]]:
        depth = 10 * k if self.quantization else k
        if depth != self._depth:  # session settings: once per depth, not on every query
            # pgvector's HNSW returns at most ef_search rows (40 by default): the beam must cover what is asked.
            self._db.execute(f"SET hnsw.ef_search = {min(1000, max(40, depth))}")
            self._db.execute("SET ivfflat.probes = 10")
            self._db.commit()
            self._depth = depth
        out = []
        for query in np.asarray(vectors, dtype=np.float32):
            literal, dim = _literal(query), len(query)
            if self.quantization:  # candidates from the quantized index, re-ranked with the full vectors
                column, _ = self._expression(dim)
                probe = (f"{column} <#> (%s::vector)::halfvec({dim})" if self.quantization == "halfvec"
                         else f"{column} <~> binary_quantize(%s::vector)::bit({dim})")  # fmt: skip
                sql = (
                    f"SELECT id, -(embedding <#> %s::vector) AS score FROM (SELECT id, embedding FROM {self.table} "
                    f"ORDER BY {probe} LIMIT %s) candidates ORDER BY score DESC LIMIT %s"
                )
                rows = self._db.execute(sql, (literal, literal, depth, k)).fetchall()
            else:
                sql = (
                    f"SELECT id, -(embedding <#> %s::vector) AS score FROM {self.table} "
                    "ORDER BY embedding <#> %s::vector LIMIT %s"
                )
                rows = self._db.execute(sql, (literal, literal, k)).fetchall()
            self._db.commit()
            out.append([(int(i), float(s)) for i, s in rows])
        return out

    def read_all(self) -> dict[int, np.ndarray]:
        rows = self._db.execute(f"SELECT id, embedding::text FROM {self.table}").fetchall()
        self._db.commit()
        return {int(i): np.asarray(json.loads(v), dtype=np.float32) for i, v in rows}

    def close(self) -> None:
        self._db.close()
