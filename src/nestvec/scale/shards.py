"""Shard files and the manifest that makes a distributed embed resumable.

A shard is one Parquet file, one row per embedded chunk: `id`, `chunk`, `start`, `end` (the
chunk's characters), `embedding` (float32, float16, int8 or packed bits), and on a document's
first chunk its `text`, `metadata` (JSON), `tokens` and `truncated`. The recipe that made the
vectors (bound to the model's identity) is in the schema metadata. A shard is written beside
its name and renamed, so it is whole or absent; a retried task writes the same bytes again.

`_manifest.jsonl` is the job's record: a header (the plan's fingerprint, the recipe, the shard
count), then one line per finished shard with its sha256, appended and fsynced by the driver
alone. A rerun trusts a line only when the file's checksum still matches.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nestvec.errors import InputError, MissingExtraError
from nestvec.files import fsync_dir

STORE_AS = ("float32", "float16", "int8", "binary")
SHARD_FORMAT = 1
MANIFEST = "_manifest.jsonl"  # "_": Parquet readers of the folder skip it
META_KEY = b"nestvec"


def _pa() -> Any:
    try:
        import pyarrow as pa
    except ImportError as exc:
        raise MissingExtraError("pyarrow", "parquet", "Parquet shards") from exc
    return pa


def embedding_column(vectors: np.ndarray, store_as: str) -> Any:
    """Vectors as the shard's embedding column; int8 is round(127·x) of unit vectors' components."""
    pa = _pa()
    dim = vectors.shape[1]
    if store_as == "binary":
        packed = np.packbits(vectors > 0, axis=1)
        return pa.array([row.tobytes() for row in packed], type=pa.binary(packed.shape[1]))
    if store_as == "int8":
        values = np.clip(np.rint(vectors * 127.0), -127, 127).astype(np.int8)
    else:
        values = vectors.astype(np.float16 if store_as == "float16" else np.float32)
    return pa.FixedSizeListArray.from_arrays(pa.array(values.reshape(-1)), dim)


def write_shard(
    path: Path, columns: dict[str, Any], vectors: np.ndarray, *, store_as: str, meta: dict[str, Any]
) -> str:
    """Write one shard whole (beside it, then renamed); its sha256."""
    import pyarrow.parquet as pq

    pa = _pa()
    table = pa.table({**columns, "embedding": embedding_column(vectors, store_as)})
    table = table.replace_schema_metadata({META_KEY: json.dumps({"format": SHARD_FORMAT, **meta}).encode()})
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    pq.write_table(table, tmp)
    with tmp.open("rb+") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    return sha256(path)


def read_meta(path: Path) -> dict[str, Any]:
    import pyarrow.parquet as pq

    raw = (pq.read_schema(path).metadata or {}).get(META_KEY)
    if raw is None:
        raise InputError(f"{path} is not a nestvec shard (no recipe in its schema metadata).")
    return dict(json.loads(raw))


def float_vectors(table: Any, store_as: str) -> np.ndarray:
    """A float32/float16 shard's vectors as float32; the lossy codes cannot feed a collection."""
    if store_as not in ("float32", "float16"):
        raise InputError(
            f"These shards hold {store_as} codes, which a collection cannot re-code without loss; "
            "embed them again with --store-as float32 (or float16) to ingest them."
        )
    column = table.column("embedding").combine_chunks()
    return np.asarray(column.flatten().to_numpy(zero_copy_only=False), dtype=np.float32).reshape(len(column), -1)


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class Manifest:
    """The job's header and its finished shards (index → entry), checksums verified on open."""

    folder: Path
    header: dict[str, Any]
    finished: dict[int, dict[str, Any]] = field(default_factory=dict)

    @property
    def path(self) -> Path:
        return self.folder / MANIFEST

    @property
    def complete(self) -> bool:
        return len(self.finished) == int(self.header["shards"])

    @classmethod
    def read(cls, folder: Path) -> Manifest:
        path = folder / MANIFEST
        if not path.is_file():
            raise InputError(f"{folder} holds no {MANIFEST}; it is not a folder of nestvec shards.")
        lines = _whole_lines(path)
        if not lines or "nestvec_shards" not in lines[0]:
            raise InputError(f"{path} has no header line; it is not a nestvec shard manifest.")
        manifest = cls(folder, lines[0])
        for entry in lines[1:]:
            shard = folder / str(entry["name"])
            if shard.is_file() and sha256(shard) == entry["sha256"]:
                manifest.finished[int(entry["shard"])] = entry
        return manifest

    @classmethod
    def start(cls, folder: Path, header: dict[str, Any]) -> Manifest:
        """The folder's manifest for this job: resumed when it is this job's, new when absent."""
        header = {"nestvec_shards": SHARD_FORMAT, **header}
        if (folder / MANIFEST).exists():
            found = cls.read(folder)
            differs = [k for k in ("fingerprint", "recipe", "store_as") if found.header.get(k) != header.get(k)]
            if differs:
                raise InputError(
                    f"{folder} holds shards of another job (its {', '.join(differs)} differ: other input files, "
                    "read options, shard size or recipe). Choose a new output folder, or remove that one."
                )
            return found
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{MANIFEST}.tmp-{os.getpid()}"
        tmp.write_text(json.dumps(header) + "\n")
        os.replace(tmp, folder / MANIFEST)
        fsync_dir(folder)
        return cls(folder, header)

    def record(self, entry: dict[str, Any]) -> None:
        with self.path.open("a") as fh:
            fh.write(json.dumps(entry) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        self.finished[int(entry["shard"])] = entry


def _whole_lines(path: Path) -> list[dict[str, Any]]:
    """The manifest's lines; a line torn by a kill mid-append is cut off, so appends stay whole."""
    data = path.read_bytes()
    whole = data[: data.rfind(b"\n") + 1]
    if len(whole) != len(data):
        with path.open("rb+") as fh:
            fh.truncate(len(whole))
    return [json.loads(line) for line in whole.decode().splitlines() if line.strip()]
