"""LanceDB (embedded, a folder): one table of rows keyed by chunk label; the state record in the
vector field's metadata. Exact search by default; `index="ivf_pq"` builds LanceDB's IVF-PQ index
after the rows are in (the `lance` extra)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from nestvec.errors import InputError, MissingExtraError
from nestvec.export.feed import Rows
from nestvec.export.targets import TargetState

_KEY = "nestvec"


class LanceTarget:
    def __init__(self, where: str, *, index: str | None = None) -> None:
        try:
            import lancedb
            import pyarrow as pa
        except ImportError as exc:
            raise MissingExtraError("lancedb", "lance", "Exporting to LanceDB") from exc
        path, _, table = where.partition("#")
        self.url, self.table_name, self.index = f"lance://{where}", table or "vectors", index
        self._pa = pa
        self._db = lancedb.connect(str(Path(path).expanduser()))
        self._table: Any = None

    def _names(self) -> list[str]:
        found = self._db.list_tables()
        return list(getattr(found, "tables", found))

    def _open(self) -> Any:
        if self._table is None and self.table_name in self._names():
            self._table = self._db.open_table(self.table_name)
        return self._table

    def state(self) -> TargetState | None:
        table = self._open()
        if table is None:
            return None
        schema = table.schema
        raw = (schema.field("vector").metadata or {}).get(_KEY.encode()) if "vector" in schema.names else None
        if raw is None:  # a table nestvec did not write: never taken for ours
            width = schema.field("vector").type.list_size if "vector" in schema.names else 0
            return TargetState.foreign(int(width))
        return TargetState.from_dict(json.loads(raw))

    def _schema(self, state: TargetState) -> Any:
        pa = self._pa
        return pa.schema([
            pa.field("id", pa.int64()), pa.field("doc_id", pa.string()), pa.field("chunk", pa.int32()),
            pa.field("text", pa.string()), pa.field("metadata", pa.string()),
            pa.field("vector", pa.list_(pa.float32(), state.dim), metadata={_KEY: json.dumps(state.to_dict())}),
        ])  # fmt: skip

    def create(self, state: TargetState) -> None:
        self._table = self._db.create_table(self.table_name, schema=self._schema(state), mode="overwrite")

    def upsert(self, rows: Rows) -> None:
        pa = self._pa
        dim = rows.vectors.shape[1]
        batch = pa.table(
            {
                "id": pa.array(rows.labels, pa.int64()),
                "doc_id": rows.doc_ids,
                "chunk": pa.array(rows.chunks, pa.int32()),
                "text": rows.texts,
                "metadata": [json.dumps(m, ensure_ascii=False) for m in rows.metadata],
                "vector": pa.FixedSizeListArray.from_arrays(pa.array(rows.vectors.reshape(-1), pa.float32()), dim),
            },
            schema=self._open().schema,
        )
        self._open().merge_insert("id").when_matched_update_all().when_not_matched_insert_all().execute(batch)

    def delete(self, labels: list[int]) -> None:
        for start in range(0, len(labels), 1000):
            self._open().delete(f"id IN ({', '.join(str(int(x)) for x in labels[start : start + 1000])})")

    def commit(self, state: TargetState) -> None:
        table = self._open()
        if self.index and table.count_rows() >= 256:
            if self.index != "ivf_pq":
                raise InputError(f"LanceDB index {self.index!r} is not one nestvec builds; choose 'ivf_pq'.")
            table.create_index(metric="dot", vector_column_name="vector", replace=True)
        table.update_field_metadata({"path": "vector", "metadata": {_KEY: json.dumps(state.to_dict())}})

    def count(self) -> int:
        return int(self._open().count_rows())

    def search(self, vectors: np.ndarray, k: int) -> list[list[tuple[int, float]]]:
        out = []
        for query in np.asarray(vectors, dtype=np.float32):
            hits = self._open().search(query).metric("dot").limit(k).select(["id"]).to_list()
            out.append([(int(h["id"]), 1.0 - float(h["_distance"])) for h in hits])  # dot distance is 1 - dot
        return out

    def read_all(self) -> dict[int, np.ndarray]:
        table = self._open().to_arrow()
        vectors = np.asarray(table.column("vector").combine_chunks().flatten(), dtype=np.float32)
        ids = table.column("id").to_numpy()
        return dict(zip(ids.tolist(), vectors.reshape(len(ids), -1), strict=True))

    def close(self) -> None:
        self._table = None
