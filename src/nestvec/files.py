"""Crash-safe file helpers shared by every saved artifact (collections, transforms, models)."""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import shutil
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nestvec.errors import CollectionError

FORMAT_VERSION = 1


def hash_file(path: Path, digest: Any | None = None) -> Any:
    """Feed `path` into `digest` (a new sha256 by default) in 1 MiB blocks; returns the digest."""
    digest = hashlib.sha256() if digest is None else digest
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest


def crc32_blocks(path: Path, *, size: int, block: int) -> list[int]:
    """crc32 of each `block` bytes of the first `size` bytes of `path` (the last block may be short).

    Read through a memory map, so no byte is copied into the heap on the way (a collection's index
    opens with gigabytes to check). OSError when the file is shorter.
    """
    if size <= 0:
        return []
    with path.open("rb") as fh:
        held = os.fstat(fh.fileno()).st_size
        if held < size:
            raise OSError(f"{path} holds {held} bytes, fewer than the {size} expected")
        return _crc32_mapped(fh.fileno(), size, block)


def _crc32_mapped(fd: int, size: int, block: int) -> list[int]:
    with mmap.mmap(fd, size, prot=mmap.PROT_READ) as mapped:
        view = memoryview(mapped)
        try:
            return [zlib.crc32(view[lo : min(size, lo + block)]) for lo in range(0, size, block)]
        finally:
            view.release()


def crc32_file(path: Path) -> int:
    """crc32 of the whole file at `path`, read as `crc32_blocks` reads it."""
    size = path.stat().st_size
    return crc32_blocks(path, size=size, block=size)[0] if size else 0


def fsync_dir(path: Path) -> None:
    """Make a rename or a new file in `path` durable (POSIX needs the directory fsynced)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_bytes_atomic(path: Path, data: bytes) -> None:
    """Write-then-rename, so readers see the old file or the new one, never half of one."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with tmp.open("wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)  # a full disk leaves no half-written file behind
        raise
    fsync_dir(path.parent)


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    write_bytes_atomic(path, (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode("utf-8"))


def load_json(path: Path, error: type[Exception], *, then: str = "") -> Any:
    """The JSON in `path`, or `error` naming the file (and `then`, what it means) when it is not valid."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise error(f"{path} is not valid JSON ({exc}){then}") from exc


def read_config(folder: Path, kind: str, *, aliases: tuple[str, ...] = ()) -> dict[str, Any]:
    """Read a saved folder's config.json and check it is of `kind` (or an older name of it, in
    `aliases`) and a format we can read."""
    from nestvec._version import __version__

    if not folder.exists():
        raise CollectionError(f"{folder} does not exist. Create it first (nestvec index build, or Collection.create).")
    path = folder / "config.json"
    if not path.is_file():
        raise CollectionError(f"{folder} is not a nestvec {kind}: config.json is missing.")
    data = load_json(path, CollectionError, then="; the folder is corrupt.")
    if not isinstance(data, dict) or data.get("kind") not in [f"nestvec.{k}" for k in (kind, *aliases)]:
        raise CollectionError(
            f"{path} does not describe a nestvec {kind} "
            f"(kind={data.get('kind') if isinstance(data, dict) else None!r})."
        )
    version = data.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CollectionError(
            f"{path} has format_version {version!r}; nestvec {__version__} reads up to {FORMAT_VERSION}. "
            "Upgrade nestvec to open it."
        )
    return data


def config_header(kind: str) -> dict[str, Any]:
    from nestvec._version import __version__

    return {"kind": f"nestvec.{kind}", "format_version": FORMAT_VERSION, "nestvec_version": __version__}


def without_header(config: dict[str, Any]) -> dict[str, Any]:
    """A saved config's own settings, without what config_header adds (to save them again)."""
    return {k: v for k, v in config.items() if k not in ("kind", "format_version", "nestvec_version")}


def new_folder(path: str | Path) -> Path:
    """`path` as a Path, refused when something is already there (saved folders never overwrite) or
    when no folder can be made there."""
    from nestvec.errors import InputError

    target = Path(path)
    if target.exists():
        raise InputError(f"{target} already exists; choose a new folder.")
    check_creatable(target)  # refused now, before the work whose result it would hold
    return target


def check_creatable(target: Path) -> None:
    """Raise an InputError unless a folder can be made at `target` (its missing parents included),
    before any work whose result would have nowhere to go. Nothing is left behind: the probe is
    made and removed in the nearest folder that exists."""
    from nestvec.errors import InputError

    blocking = next((a for a in target.parents if a.exists() and not a.is_dir()), None)
    if blocking is not None:
        raise InputError(f"Cannot create {target}: {blocking} is a file, not a folder; choose another path.")
    nearest = next(a for a in target.absolute().parents if a.exists())
    probe = nearest / f".nestvec-probe-{os.getpid()}"
    try:
        probe.mkdir(exist_ok=True)
        probe.rmdir()
    except OSError as exc:
        raise InputError(f"Cannot create {target} ({exc.strerror or exc}); choose a folder you can write to.") from exc


def write_folder_whole(target: Path, write: Callable[[Path], object]) -> None:
    """`write(folder)` into a folder beside `target`, then renamed to it: `target` is whole or absent."""
    check_creatable(target)
    staging = target.with_name(f".{target.name}.saving-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        write(staging)
        os.rename(staging, target)  # fails where another process put a whole `target` first
        fsync_dir(target.parent)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
