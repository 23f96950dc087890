"""Qdrant: a local folder (qdrant-client's embedded mode) or a server URL, one collection of
points keyed by chunk label with the document id, chunk, text and metadata as payload; the
state record in the collection's metadata (the `qdrant` extra). `quantization` ("scalar" or
"binary") turns on Qdrant's own quantization, searched with rescoring from the original vectors.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from nestvec.errors import InputError, MissingExtraError
from nestvec.export.feed import Rows
from nestvec.export.targets import TargetState

_KEY = "nestvec"


class QdrantTarget:
    def __init__(self, where: str, *, quantization: str | None = None) -> None:
        try:
            from qdrant_client import QdrantClient, models
        except ImportError as exc:
            raise MissingExtraError("qdrant-client", "qdrant", "Exporting to Qdrant") from exc
        place, _, name = where.partition("#")
        self.url, self.name, self.quantization = f"qdrant://{where}", name or "nestvec", quantization
        if quantization not in (None, "scalar", "binary"):
            raise InputError(f"Qdrant quantization is 'scalar' or 'binary', got {quantization!r}.")
        self._models = models
        remote = place.startswith(("http://", "https://"))
        try:
            self._client = QdrantClient(url=place) if remote else QdrantClient(path=str(Path(place).expanduser()))
        except Exception as exc:  # the client raises its own types (a lock held, a refused connection)
            raise InputError(f"Could not open the Qdrant target {self.url}: {exc}") from exc

    def state(self) -> TargetState | None:
        try:
            if not self._client.collection_exists(self.name):
                return None
            config = self._client.get_collection(self.name).config
        except Exception as exc:
            raise InputError(f"The Qdrant target {self.url} could not be read: {exc}") from exc
        record = (getattr(config, "metadata", None) or {}).get(_KEY)
        if record is None:  # a collection nestvec did not write
            size = getattr(config.params.vectors, "size", 0)
            return TargetState.foreign(int(size or 0))
        return TargetState.from_dict(record)

    def create(self, state: TargetState) -> None:
        m = self._models
        if self._client.collection_exists(self.name):
            self._client.delete_collection(self.name)
        quantization: Any = None
        if self.quantization == "scalar":
            quantization = m.ScalarQuantization(scalar=m.ScalarQuantizationConfig(type=m.ScalarType.INT8))
        elif self.quantization == "binary":
            quantization = m.BinaryQuantization(binary=m.BinaryQuantizationConfig())
        self._client.create_collection(
            self.name, vectors_config=m.VectorParams(size=state.dim, distance=m.Distance.DOT),
            quantization_config=quantization, metadata={_KEY: state.to_dict()},
        )  # fmt: skip

    def upsert(self, rows: Rows) -> None:
        payloads = [
            {"doc_id": d, "chunk": c, "text": t, "metadata": meta}
            for d, c, t, meta in zip(rows.doc_ids, rows.chunks, rows.texts, rows.metadata, strict=True)
        ]
        batch = self._models.Batch(ids=rows.labels.tolist(), vectors=rows.vectors.tolist(), payloads=payloads)
        self._client.upsert(self.name, points=batch, wait=True)

    def delete(self, labels: list[int]) -> None:
        for start in range(0, len(labels), 1000):
            points = self._models.PointIdsList(points=list[Any](labels[start : start + 1000]))
            self._client.delete(self.name, points_selector=points, wait=True)

    def commit(self, state: TargetState) -> None:
        self._client.update_collection(self.name, metadata={_KEY: state.to_dict()})

    def count(self) -> int:
        return int(self._client.count(self.name, exact=True).count)

    def search(self, vectors: np.ndarray, k: int) -> list[list[tuple[int, float]]]:
        m = self._models
        params = m.SearchParams(quantization=m.QuantizationSearchParams(rescore=True)) if self.quantization else None
        out = []
        for query in np.asarray(vectors, dtype=np.float32):
            found = self._client.query_points(self.name, query=query.tolist(), limit=k, search_params=params)
            out.append([(int(p.id), float(p.score)) for p in found.points])
        return out

    def read_all(self) -> dict[int, np.ndarray]:
        found: dict[int, np.ndarray] = {}
        offset = None
        while True:
            points, offset = self._client.scroll(self.name, limit=1000, offset=offset, with_vectors=True)
            found.update({int(p.id): np.asarray(p.vector, dtype=np.float32) for p in points})
            if offset is None:
                return found

    def close(self) -> None:
        self._client.close()
