"""A Parquet file: every row (label, document id, chunk, text, metadata as JSON, float32
vector) with the state record in the schema metadata. Parquet cannot be changed in place, so an
export rewrites the file whole (beside it, then renamed: the file is the old one or the new one);
an incremental export still reads only the collection's changes. Search is exact (numpy)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from nestvec.errors import MissingExtraError
from nestvec.export.feed import Rows
from nestvec.export.targets import TargetState

_KEY = b"nestvec"


class ParquetTarget:
    def __init__(self, where: str) -> None:
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError as exc:
            raise MissingExtraError("pyarrow", "parquet", "Exporting to Parquet") from exc
        self.url, self.path = f"parquet://{where}", Path(where).expanduser()
        self._pa, self._pq = pa, pq
        self._rows: dict[int, dict[str, Any]] | None = None
        self._matrix: tuple[np.ndarray, np.ndarray] | None = None

    def state(self) -> TargetState | None:
        if not self.path.is_file():
            return None
        raw = (self._pq.read_schema(self.path).metadata or {}).get(_KEY)
        return TargetState.from_dict(json.loads(raw)) if raw else TargetState.foreign()

    def _loaded(self) -> dict[int, dict[str, Any]]:
        if self._rows is None:
            self._rows = {}
            if self.path.is_file():
                for row in self._pq.read_table(self.path).to_pylist():
                    self._rows[int(row["id"])] = row
        return self._rows

    def create(self, state: TargetState) -> None:
        self._rows = {}

    def upsert(self, rows: Rows) -> None:
        held = self._loaded()
        for n, label in enumerate(rows.labels.tolist()):
            held[label] = {
                "id": label, "doc_id": rows.doc_ids[n], "chunk": rows.chunks[n], "text": rows.texts[n],
                "metadata": json.dumps(rows.metadata[n], ensure_ascii=False), "vector": rows.vectors[n].tolist(),
            }  # fmt: skip

    def delete(self, labels: list[int]) -> None:
        held = self._loaded()
        for label in labels:
            held.pop(int(label), None)

    def commit(self, state: TargetState) -> None:
        pa = self._pa
        schema = pa.schema(
            [("id", pa.int64()), ("doc_id", pa.string()), ("chunk", pa.int32()), ("text", pa.string()),
             ("metadata", pa.string()), ("vector", pa.list_(pa.float32(), state.dim))],
            metadata={_KEY: json.dumps(state.to_dict()).encode()},
        )  # fmt: skip
        rows = [self._loaded()[k] for k in sorted(self._loaded())]
        table = pa.Table.from_pylist(rows, schema=schema)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._pq.write_table(table, tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, self.path)
        self._matrix = None

    def count(self) -> int:
        return len(self._loaded())

    def read_all(self) -> dict[int, np.ndarray]:
        return {k: np.asarray(r["vector"], dtype=np.float32) for k, r in self._loaded().items()}

    def search(self, vectors: np.ndarray, k: int) -> list[list[tuple[int, float]]]:
        if self._matrix is None:  # built once per open target; writes go through commit, which drops it
            held = self.read_all()
            self._matrix = (
                np.fromiter(held, dtype=np.int64, count=len(held)),
                np.stack(list(held.values())) if held else np.zeros((0, vectors.shape[1]), np.float32),
            )
        labels, matrix = self._matrix
        scores = np.asarray(vectors, dtype=np.float32) @ matrix.T
        top = np.argsort(-scores, axis=1)[:, :k]
        return [[(int(labels[j]), float(scores[n, j])) for j in row] for n, row in enumerate(top)]

    def close(self) -> None:
        self._rows = None
