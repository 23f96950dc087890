"""Milvus: a Milvus Lite file (`milvus://./vectors.db#name`) or a server
(`milvus://http://HOST:19530#name`); one collection keyed by chunk label, the state record in the
collection's properties, inner-product search. `index` "ivf_flat" or "hnsw" builds that index
instead of FLAT (Milvus Lite builds FLAT and IVF_FLAT; HNSW needs a server) (the `milvus` extra).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from nestvec.errors import InputError, MissingExtraError
from nestvec.export.feed import Rows
from nestvec.export.targets import TargetState

_KEY = "nestvec"
_INDEXES = {None: "FLAT", "flat": "FLAT", "ivf_flat": "IVF_FLAT", "hnsw": "HNSW"}


class MilvusTarget:
    def __init__(self, where: str, *, index: str | None = None) -> None:
        try:
            from pymilvus import DataType, MilvusClient
        except ImportError as exc:
            raise MissingExtraError("pymilvus", "milvus", "Exporting to Milvus") from exc
        place, _, name = where.partition("#")
        self.url, self.name = f"milvus://{where}", name or "nestvec"
        if index not in _INDEXES:
            raise InputError(f"Milvus index is flat, ivf_flat or hnsw, got {index!r}.")
        self.index, self._types = _INDEXES[index], DataType
        remote = place.startswith(("http://", "https://"))
        try:
            self._client = MilvusClient(place if remote else str(Path(place).expanduser()))
        except Exception as exc:  # pymilvus raises its own types for refused connections and bad files
            raise InputError(f"Could not open the Milvus target {self.url}: {exc}") from exc

    def state(self) -> TargetState | None:
        if not self._client.has_collection(self.name):
            return None
        info = self._client.describe_collection(self.name)
        raw = (info.get("properties") or {}).get(_KEY)
        if raw is None:
            return TargetState.foreign()
        return TargetState.from_dict(json.loads(raw))

    def create(self, state: TargetState) -> None:
        from pymilvus import MilvusClient

        types = self._types
        if self._client.has_collection(self.name):
            self._client.drop_collection(self.name)
        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", types.INT64, is_primary=True)
        schema.add_field("doc_id", types.VARCHAR, max_length=65535)
        schema.add_field("chunk", types.INT32)
        schema.add_field("text", types.VARCHAR, max_length=65535)
        schema.add_field("metadata", types.JSON)
        schema.add_field("vector", types.FLOAT_VECTOR, dim=state.dim)
        params = self._client.prepare_index_params()
        params.add_index("vector", index_type=self.index, metric_type="IP", params=self._index_params())
        self._client.create_collection(
            self.name, schema=schema, index_params=params, properties={_KEY: json.dumps(state.to_dict())}
        )

    def _index_params(self) -> dict[str, Any]:
        return (
            {"nlist": 64}
            if self.index == "IVF_FLAT"
            else {"M": 16, "efConstruction": 200}
            if self.index == "HNSW"
            else {}
        )

    def upsert(self, rows: Rows) -> None:
        data = [
            {"id": int(label), "doc_id": d, "chunk": int(c), "text": t[:65535], "metadata": m, "vector": v.tolist()}
            for label, d, c, t, m, v in zip(
                rows.labels, rows.doc_ids, rows.chunks, rows.texts, rows.metadata, rows.vectors, strict=True
            )
        ]
        self._client.upsert(self.name, data)

    def delete(self, labels: list[int]) -> None:
        for start in range(0, len(labels), 1000):
            self._client.delete(self.name, ids=[int(x) for x in labels[start : start + 1000]])

    def commit(self, state: TargetState) -> None:
        self._client.flush(self.name)
        self._client.alter_collection_properties(self.name, properties={_KEY: json.dumps(state.to_dict())})

    def count(self) -> int:
        found = self._client.query(self.name, filter="", output_fields=["count(*)"])
        return int(found[0]["count(*)"])

    def search(self, vectors: np.ndarray, k: int) -> list[list[tuple[int, float]]]:
        params = {"nprobe": 16} if self.index == "IVF_FLAT" else {"ef": max(64, k)} if self.index == "HNSW" else {}
        found = self._client.search(
            self.name, data=np.asarray(vectors, dtype=np.float32).tolist(), limit=k, search_params={"params": params}
        )
        return [[(int(h["id"]), float(h["distance"])) for h in hits] for hits in found]

    def read_all(self) -> dict[int, np.ndarray]:
        held: dict[int, np.ndarray] = {}
        iterator = self._client.query_iterator(self.name, batch_size=1000, filter="id >= 0", output_fields=["vector"])
        while batch := iterator.next():
            held.update({int(r["id"]): np.asarray(r["vector"], dtype=np.float32) for r in batch})
        iterator.close()
        return held

    def close(self) -> None:
        self._client.close()
