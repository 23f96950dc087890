"""A full disk and a read-only folder, on real mounts: a small tmpfs, and a read-only bind mount.

Needs mount(8) and the right to mount (root in a container with CAP_SYS_ADMIN, as in CI);
elsewhere these tests skip, saying so.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

import nestvec
from nestvec import Collection, Document
from nestvec.errors import CollectionError
from tests.conftest import ROOT, paper_docs


def _mount(*args: str) -> None:
    done = subprocess.run(["mount", *args], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount here ({done.stderr.strip() or done.returncode}): needs root with CAP_SYS_ADMIN")


@contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Path]:
    if shutil.which("mount") is None:
        pytest.skip("no mount(8) on this machine")
    path.mkdir()
    _mount("-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path))
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


@contextmanager
def read_only_view(source: Path, view: Path) -> Iterator[Path]:
    if shutil.which("mount") is None:
        pytest.skip("no mount(8) on this machine")
    view.mkdir()
    _mount("--bind", str(source), str(view))
    try:
        _mount("-o", "remount,bind,ro", str(view))
        yield view
    finally:
        subprocess.run(["umount", "-l", str(view)], check=False)


def _fill(disk: Path) -> Path:
    filler = disk / "filler"
    with filler.open("wb") as fh:
        try:
            while True:
                fh.write(b"\0" * 65536)
                fh.flush()
        except OSError:
            pass
    return filler


def _leftovers(folder: Path) -> list[Path]:
    return [p for p in folder.rglob(".*") if ".tmp-" in p.name or ".saving-" in p.name]


def test_a_full_disk_is_one_clear_error_and_changes_nothing(tmp_path: Path, encoder: nestvec.Encoder) -> None:
    docs = paper_docs(120)
    with tmpfs(tmp_path / "disk", "24m") as disk:
        path = disk / "c"
        with Collection.create(path, model=encoder, codes="int8") as collection:
            collection.add(docs[:80])
        collection = Collection.open(path, model=encoder)
        collection.add(docs[80:90])  # committed, not yet in a checkpoint
        filler = _fill(disk)
        with pytest.raises(CollectionError, match="disk is full"):
            collection.add(docs[90:])
        with pytest.raises(CollectionError, match="could not be saved"):
            collection.checkpoint()
        collection.close()  # a checkpoint that cannot be written is a warning here, not an error
        assert _leftovers(path) == []
        with Collection.open(path, model=encoder) as full:  # a full disk can still be searched
            assert full.count() == 90 and full.search(docs[85].text, k=1)[0].id == docs[85].id
        filler.unlink()
        assert nestvec.check_collection(path, model=False).ok
        with Collection.open(path, model=encoder) as again:
            assert again.count() == 90  # the refused add wrote nothing
            assert again.add(docs[90:]).added == 30
            assert again.search(docs[100].text, k=1)[0].id == docs[100].id


WRITER = """
import json, os, signal, sys
from nestvec import Collection, Document
collection = Collection.open(sys.argv[1])
collection.add([Document(f"late-{i}", f"written after the last checkpoint, number {i}") for i in range(5)])
os.kill(os.getpid(), signal.SIGKILL)  # no close: the WAL and a stale checkpoint stay behind
"""


@pytest.mark.parametrize("unclean", [False, True])
def test_a_read_only_collection_can_be_searched(tmp_path: Path, encoder: nestvec.Encoder, unclean: bool) -> None:
    source = tmp_path / "c"
    docs = paper_docs(60)
    with Collection.create(source, model="minilm", codes="int8") as collection:
        collection.add(docs)
    if unclean:
        run = subprocess.run([sys.executable, "-c", WRITER, str(source)], cwd=ROOT, capture_output=True)
        assert run.returncode == -signal.SIGKILL, run.stderr
        assert (source / "store.sqlite3-wal").exists()
    with read_only_view(source, tmp_path / "ro") as view:
        collection = Collection.open(view / "c" if (view / "c").exists() else view, model=encoder)
        assert collection.count() == 60 + 5 * unclean
        assert collection.search(docs[7].text, k=1)[0].id == docs[7].id
        if unclean:
            assert collection.get(["late-3"])[0].text.endswith("number 3")
        with pytest.raises(CollectionError, match="read-only"):
            collection.add([Document("new", "cannot be stored here")])
        collection.close()
        assert nestvec.check_collection(view, model=False).ok
