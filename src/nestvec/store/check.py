"""`nestvec check` and `nestvec repair`: is a collection whole, and rebuild what is derived.

The store (SQLite: documents, chunk vectors, the change log) is the source of truth; the
keyword index, the vector index checkpoint and leftover temporary files are derived or
disposable, so repair rebuilds or removes them and never touches a document. Check writes
nothing: it loads the checkpoint as a new process would, replays the store's log into it, and
compares every row with the vector stored for its label.
"""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nestvec.errors import CollectionError, IndexCorruptError, InputError, NestvecError
from nestvec.index import checkpoint
from nestvec.index.vector_index import VectorIndex
from nestvec.recipe import Recipe
from nestvec.store.folder import STORE_FILE, read_recipe
from nestvec.store.live_index import INDEX_DIR, replay
from nestvec.store.sqlite import SQLiteStore

_TEMPORARY = re.compile(r"^\..+\.(tmp|saving)-(\d+)$")  # files.write_bytes_atomic and VectorSteps.save_in


@dataclass(frozen=True)
class Finding:
    part: str  # store, keywords, index, transforms, model, files
    ok: bool
    detail: str
    wrong: int = 0  # index rows with another vector than the stored one, missing or extra


@dataclass(frozen=True)
class CheckReport:
    path: str
    findings: list[Finding]

    @property
    def ok(self) -> bool:
        return all(f.ok for f in self.findings)

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "ok": self.ok, "findings": [asdict(f) for f in self.findings]}


@dataclass(frozen=True)
class RepairReport:
    path: str
    actions: list[str]
    after: CheckReport = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "actions": self.actions, "after": self.after.to_dict()}


def check_collection(path: str | Path, *, model: bool = True) -> CheckReport:
    """Every part of the collection at `path`; `model=False` skips loading the model to verify it."""
    target = Path(path).expanduser().resolve()
    recipe = read_recipe(target)
    findings: list[Finding] = []
    try:
        store = SQLiteStore(target / STORE_FILE)
    except CollectionError as exc:
        return CheckReport(str(target), [Finding("store", False, str(exc))])
    try:
        problems = store.integrity_problems()
        findings.append(Finding("store", not problems, "; ".join(problems) or f"{store.count()} documents, sound"))
        if not problems:
            if store.has_sparse():
                trouble = store.keyword_problem()
                findings.append(Finding("keywords", trouble is None, trouble or "in step with the documents"))
            findings.append(_check_index(target, recipe, store))
        stored = store.chunk_count() if not problems else 0
    finally:
        store.close()
    findings.append(_check_transforms(target, recipe, stored))
    if model:
        findings.append(_check_model(recipe, target))
    findings.append(_check_leftovers(target))
    return CheckReport(str(target), findings)


def _check_index(folder: Path, recipe: Recipe, store: SQLiteStore) -> Finding:
    index_dir = folder / INDEX_DIR
    if not (index_dir / "config.json").exists():
        if orphans := checkpoint.stale_files(index_dir, set()):
            detail = f"{INDEX_DIR}/config.json is missing beside {len(orphans)} checkpoint file(s)"
            return Finding("index", False, detail + " (`nestvec repair` rebuilds the index)")
        return Finding("index", True, "no checkpoint yet: the next open builds it from the store")
    for _ in range(5):  # another process may write while we read: compare one consistent moment
        version = store.version()
        try:
            index, _ = checkpoint.load(index_dir, recipe.index, recipe.dim)
        except IndexCorruptError as exc:
            return Finding("index", False, f"{exc} (`nestvec repair` rebuilds it from the store)")
        if not store.log_floor() <= index.version <= version:
            return Finding("index", False, f"the checkpoint (store version {index.version}) cannot be replayed")
        replay(index, store)
        labels, vectors, _ = store.all_chunks(recipe.dim)
        if store.version() == version == index.version:
            return _compare(index, labels, vectors)
    return Finding("index", True, "not compared: other processes kept writing")


def _compare(index: VectorIndex, labels: np.ndarray, vectors: np.ndarray) -> Finding:
    alive = np.sort(index.table.labels[index.table.alive])
    missing, extra = np.setdiff1d(labels, alive), np.setdiff1d(alive, labels)
    common = np.intersect1d(labels, alive)
    mine = vectors[np.searchsorted(labels, common)]
    wrong = 0
    if index.exact is not None and len(common):
        rows = index.table.positions(common)
        wrong = int((~np.all(index.exact.get(rows) == mine, axis=1)).sum())
    wrong = max(wrong, _wrong_codes(index, common, mine))
    ok = not (len(missing) or len(extra) or wrong)
    detail = f"{len(alive)} rows checked against the store: {wrong} with another vector than the stored one"
    detail += f", {len(missing)} stored chunks missing, {len(extra)} rows for chunks the store lacks"
    advice = "" if ok else " (`nestvec repair` rebuilds the index)"
    return Finding("index", ok, detail + advice, wrong=wrong + len(missing) + len(extra))


def _wrong_codes(index: VectorIndex, labels: np.ndarray, stored: np.ndarray) -> int:
    """Rows whose codes do not decode to (near) the stored vector; codes that cannot be decoded
    (IVF lists, RaBitQ) are covered by the float rows kept beside them."""
    if not len(labels) or index.faiss is None or len(index.pending):
        return 0
    try:
        decoded = index.decoded(labels)
    except InputError:
        return 0
    if index.spec.binary:
        return int((~np.all((decoded > 0) == (stored > 0), axis=1)).sum())
    if index.spec.codes == "float32":
        return int((~np.all(decoded == stored, axis=1)).sum())
    cosine = (decoded * stored).sum(1) / np.maximum(
        np.linalg.norm(decoded, axis=1) * np.linalg.norm(stored, axis=1), 1e-12
    )
    return int((cosine < 0.98).sum())  # int8/float16 keep cosine > 0.99; another text's vector is far below


def _check_transforms(folder: Path, recipe: Recipe, stored: int) -> Finding:
    from nestvec.store.embedding import blank_steps, missing_fit
    from nestvec.transforms.steps import VectorSteps

    if not recipe.vectors.fitted:
        return Finding("transforms", True, "none to fit")
    try:
        steps = VectorSteps.load_from(folder, blank_steps(recipe))
    except NestvecError as exc:
        return Finding("transforms", False, f"the fitted transform does not load: {exc}")
    if not steps.fitted and stored:
        return Finding("transforms", False, missing_fit(folder, stored))
    return Finding("transforms", True, "transform fitted and readable" if steps.fitted else "transform not fitted yet")


def _check_model(recipe: Recipe, folder: Path) -> Finding:
    from nestvec.encoders import encoder_for, resolve_model

    spec = recipe.encoder
    try:
        changed = _changed_files(resolve_model(spec.model)[1], recipe)
        if changed:  # named before loading: a damaged file may not even load
            return Finding("model", False, f"{spec.model}: {'; '.join(changed)}. Restore the model it was built with.")
        encoder = encoder_for(spec)
        recipe.check_encoder(encoder.identity, str(folder))
    except NestvecError as exc:
        return Finding("model", False, str(exc))
    return Finding("model", True, f"{spec.model}: every file matches the recipe's identity")


def _changed_files(model: Path, recipe: Recipe) -> list[str]:
    """The model files whose sha256 differs from the recipe's record (none recorded before 0.3)."""
    from nestvec.encoders.identity import file_differences
    from nestvec.files import hash_file

    recorded = recipe.identity.details.get("files") if recipe.identity is not None else None
    if not isinstance(recorded, dict):
        return []
    present = {name: hash_file(model / name).hexdigest() for name in recorded if (model / name).is_file()}
    return file_differences(present, recorded)


def leftovers(folder: Path) -> list[Path]:
    """Temporary files of writers that are gone, and checkpoint files the checkpoint does not name."""
    found = [p for p in folder.rglob(".*") if (m := _TEMPORARY.match(p.name)) and not _running(int(m.group(2)))]
    index_dir = folder / INDEX_DIR
    try:
        named = checkpoint.saved_files(index_dir)
    except CollectionError:  # no checkpoint, or an unreadable one: which files it uses is unknown
        return found
    return found + checkpoint.stale_files(index_dir, named)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process
    return True


def _check_leftovers(folder: Path) -> Finding:
    """Files a killed writer left are expected after a crash and harmless (nothing reads them), so
    they do not fail the check; repair, and the next checkpoint for stale vector files, removes them."""
    found = leftovers(folder)
    names = ", ".join(str(p.relative_to(folder)) for p in found[:5])
    detail = f"{len(found)} leftover file(s) of stopped writers, harmless (`nestvec repair` removes them): {names}"
    return Finding("files", True, detail if found else "no leftover files")


def repair_collection(path: str | Path) -> RepairReport:
    """Rebuild what check found broken from the store, remove leftovers, and check again.

    A damaged store itself cannot be rebuilt from anything: that is an error saying so.
    """
    from nestvec.store.collection import Collection

    target = Path(path).expanduser().resolve()
    before = {f.part: f for f in check_collection(target, model=False).findings}
    if not before["store"].ok:
        raise CollectionError(
            f"The store of {target} is damaged ({before['store'].detail}); the documents exist nowhere else, "
            "so it cannot be rebuilt: restore the collection from a backup (or salvage rows with sqlite3's .recover)."
        )
    actions: list[str] = []
    collection = Collection.open(target)
    try:
        if "keywords" in before and not before["keywords"].ok:
            collection.rebuild_keywords()
            actions.append("rebuilt the keyword index from the documents")
        if not before["index"].ok:
            report = collection.compact()
            actions.append(f"rebuilt the vector index from the store ({report.rows_after} rows)")
    finally:
        collection.close()
    with checkpoint.locked(target / INDEX_DIR):
        for leftover in leftovers(target):
            _remove(leftover)
            actions.append(f"removed {leftover.relative_to(target)}")
    return RepairReport(str(target), actions or ["nothing to repair"], check_collection(target, model=False))


def _remove(path: Path) -> None:
    import shutil

    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
