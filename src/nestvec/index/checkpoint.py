"""Saving and loading a VectorIndex as a folder, every file checksummed.

The durable store stays the source of truth: a checkpoint only spares a rebuild. Loading
verifies each file's crc32 and raises IndexCorruptError on any mismatch, and the caller
rebuilds from the store. Saves and loads hold an exclusive lock on the folder, so processes
sharing a collection never read a half-saved checkpoint or write the vectors file together.
Each save writes its codes and row table under new names and switches to them by replacing
config.json, so a save killed half-way leaves the previous checkpoint whole.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import uuid
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from nestvec.errors import CollectionError, IndexCorruptError
from nestvec.files import config_header, crc32_file, fsync_dir, read_config, write_bytes_atomic, write_json_atomic
from nestvec.index import backend
from nestvec.index.exact import ExactVectors
from nestvec.index.labels import LabelTable
from nestvec.index.spec import IndexSpec
from nestvec.index.spill import Spill
from nestvec.index.vector_index import VectorIndex

CODES, TABLE = "codes", "rows"  # file name stems: codes-<save>.faiss, rows-<save>.safetensors
_OURS = ("vectors-*.f32", "rows*.safetensors", "codes*.faiss")  # rows.safetensors: before 0.3


@contextlib.contextmanager
def locked(folder: Path) -> Iterator[None]:
    if not os.access(folder.parent, os.W_OK):
        yield  # a read-only collection: nobody can change the checkpoint, there is nothing to lock
        return
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / ".lock").open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def saved_version(folder: Path) -> int:
    try:
        return int(json.loads((folder / "config.json").read_text())["store_version"])
    except (OSError, ValueError, KeyError, TypeError):
        return -1


def _write_bytes(path: Path, data: bytes) -> int:
    write_bytes_atomic(path, data)
    return zlib.crc32(data)


def save(index: VectorIndex, folder: Path, *, generation: str, replace: bool = False) -> bool:
    """Checkpoint `index` unless one as new is there (`replace` overrides, after a rebuild).

    `generation` names the row layout: rows keep their numbers until a rebuild, which must pass
    a new generation. Returns whether anything was written. A failure to write (a full disk, a
    read-only folder) removes what this save wrote and raises CollectionError.
    """
    with locked(folder):
        if not replace and saved_version(folder) >= index.version:
            return False
        save_id = f"{index.version}-{uuid.uuid4().hex[:8]}"
        before = set(os.listdir(folder)) if folder.is_dir() else set()
        try:
            folder.mkdir(parents=True, exist_ok=True)
            _save(index, folder, generation, save_id)
        except OSError as exc:
            for new in set(os.listdir(folder)) - before if folder.is_dir() else ():
                (folder / new).unlink(missing_ok=True)  # this save's files; the previous checkpoint stays
            raise CollectionError(
                f"The index checkpoint in {folder} could not be saved ({exc.strerror or exc}); the previous one "
                "is unchanged and the store holds every write, so the next open replays them. Free disk space "
                "or make the folder writable, then run `nestvec check`."
            ) from exc
    return True


def _save(index: VectorIndex, folder: Path, generation: str, save_id: str) -> None:
    from safetensors.numpy import save as save_bytes

    files: dict[str, int] = {}
    if index.faiss is not None:
        name = f"{CODES}-{save_id}.faiss"
        files[name] = _write_bytes(folder / name, backend.serialize(index.spec, index.faiss))
    rows = {
        "labels": np.ascontiguousarray(index.table.labels),
        "alive": index.table.alive.astype(np.uint8),
        "pending": np.ascontiguousarray(index.pending),
    }
    name = f"{TABLE}-{save_id}.safetensors"
    files[name] = _write_bytes(folder / name, save_bytes(rows))
    exact: dict[str, Any] | None = None
    if index.exact is not None:
        written = index.exact.persist(folder, f"vectors-{generation}")
        exact = {"file": written.name, "rows": index.exact.rows, "block_crc32": index.exact.checksums()}
    fsync_dir(folder)
    # config.json goes last: until it lands, the previous checkpoint names only its own files.
    write_json_atomic(
        folder / "config.json",
        {
            **config_header("index"),
            "spec": index.spec.to_dict(),
            "dim": index.dim,
            "store_version": index.version,
            "generation": generation,
            "files_crc32": files,
            "exact": exact,
            "spill": None if index.spill is None else index.spill.to_dict(),
        },
    )
    for old in stale_files(folder, {*files, *([] if exact is None else [str(exact["file"])])}):
        old.unlink()  # processes that still map a vectors file keep reading it until they reload


def stale_files(folder: Path, named: set[str]) -> list[Path]:
    """Checkpoint files in `folder` other than those `named`, the ones its config.json uses."""
    return [p for pattern in _OURS for p in folder.glob(pattern) if p.name not in named]


def saved_files(folder: Path) -> set[str]:
    """The files the saved checkpoint names. CollectionError when its config.json cannot be read."""
    config = read_config(folder, "index")
    exact = config.get("exact")
    named = {str(n) for n in config.get("files_crc32", {})}
    return named | ({str(exact["file"])} if isinstance(exact, dict) and "file" in exact else set())


def load(folder: Path, spec: IndexSpec, dim: int) -> tuple[VectorIndex, str]:
    """(the checkpointed index, its generation), or IndexCorruptError saying which file failed."""
    with locked(folder):
        return _load(folder, spec, dim)


def _load(folder: Path, spec: IndexSpec, dim: int) -> tuple[VectorIndex, str]:
    from safetensors.numpy import load as load_tensors

    try:
        config = read_config(folder, "index")
    except CollectionError as exc:
        raise IndexCorruptError(str(exc)) from exc
    if _layout(IndexSpec.from_dict(config.get("spec", {}))) != _layout(spec) or config.get("dim") != dim:
        raise IndexCorruptError(f"{folder} was saved for another index setting than the collection's recipe.")
    files = {_role(name): (folder / name, crc) for name, crc in _files(config)}
    if TABLE not in files:
        raise IndexCorruptError(f"{folder}/config.json lists no row table.")
    tensors = load_tensors(_read_checked(*files[TABLE]))
    index = VectorIndex(spec, dim)
    index.table = LabelTable(tensors["labels"], tensors["alive"].astype(bool))
    index.pending = tensors["pending"].reshape(-1, dim).astype(np.float32)
    if CODES in files and spec.mmap:
        _check_file(*files[CODES])
        # Saves never rewrite a file in place (new names, then config.json), so the mapping stays
        # what was checked; a later save unlinks the file, and the mapping keeps its pages.
        index.faiss, index.mapped = backend.read_mapped(str(files[CODES][0])), True
    elif CODES in files:
        index.faiss = backend.deserialize(spec, _read_checked(*files[CODES]))
    index.spill = _load_spill(folder, config.get("spill"), spec, index.faiss is not None)
    index.version = int(config["store_version"])
    if spec.keeps_exact:
        index.exact = _load_exact(folder, config.get("exact"), dim)
    _check_sizes(index, folder)
    return index, str(config.get("generation", ""))


def _files(config: dict[str, Any]) -> list[tuple[str, int]]:
    listed = config.get("files_crc32", {})
    if not isinstance(listed, dict) or not all(str(n).startswith((CODES, TABLE)) for n in listed):
        raise IndexCorruptError(f"config.json lists files that are not a checkpoint's: {listed!r}")
    return [(str(n), int(c)) for n, c in listed.items()]


def _role(name: str) -> str:
    """codes or rows, from codes-<save>.faiss or rows.safetensors alike."""
    return name.split(".")[0].split("-")[0]


def _load_exact(folder: Path, meta: Any, dim: int) -> ExactVectors:
    if not isinstance(meta, dict) or not {"file", "rows", "block_crc32"} <= set(meta):
        raise IndexCorruptError(f"{folder}/config.json lacks the float vectors' file and checksums.")
    exact = ExactVectors(dim, folder / str(meta["file"]), disk_rows=int(meta["rows"]))
    if exact.checksums() != list(meta["block_crc32"]):
        raise IndexCorruptError(f"{folder / str(meta['file'])} fails its checksum.")
    return exact


def _load_spill(folder: Path, meta: Any, spec: IndexSpec, trained: bool) -> Spill | None:
    if not (spec.spill and trained):
        return None
    try:
        return Spill.from_dict(meta)
    except (TypeError, KeyError, ValueError) as exc:
        raise IndexCorruptError(f"{folder}/config.json lacks the spill rule of its lists ({exc!r}).") from exc


def _layout(spec: IndexSpec) -> IndexSpec:
    """What a checkpoint's files depend on: whether a process maps them or copies them does not count."""
    return dataclasses.replace(spec, mmap=False)


def _check_file(path: Path, crc: int) -> None:
    """`_read_checked` through a memory map: a mapped index's file is never copied into the heap."""
    try:
        found = crc32_file(path)
    except OSError as exc:
        raise IndexCorruptError(f"{path} cannot be read ({exc}).") from exc
    _compare_crc(path, found, crc)


def _read_checked(path: Path, crc: int) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise IndexCorruptError(f"{path} cannot be read ({exc}).") from exc
    _compare_crc(path, zlib.crc32(data), crc)
    return data


def _compare_crc(path: Path, found: int, crc: int) -> None:
    if found != crc:
        raise IndexCorruptError(f"{path} fails its checksum (crc32 {found:08x}, expected {crc:08x}).")


def _check_sizes(index: VectorIndex, folder: Path) -> None:
    coded = backend.core(index.faiss).ntotal if index.faiss is not None else len(index.pending)
    if index.spec.strategy == "ivf" and index.faiss is not None:
        coded += index.table.dead  # IVF lists drop deleted rows
        coded -= index.spill.entries if index.spill is not None else 0
    if coded != index.table.size or (index.exact is not None and index.exact.rows != index.table.size):
        raise IndexCorruptError(f"{folder}: the codes, rows and float vectors disagree in length.")
