"""Another index setting or fewer dimensions for a collection, without re-embedding.

Stored vectors are the model's output after the recipe's vector steps; truncating them again and
renormalizing gives exactly what embedding at the smaller width would (whitened axes are ordered
by variance, so the same holds for whitening). A derived collection is built in a new folder;
`rebuild_collection` builds beside the old one and swaps it in by rename, so a crash leaves the
old one intact.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path
from typing import Any

from nestvec.errors import InputError
from nestvec.files import config_header, fsync_dir, write_json_atomic
from nestvec.index.spec import IndexSpec
from nestvec.recipe import Recipe, parse
from nestvec.recipe import fields as table
from nestvec.store.collection import STORE_FILE, Collection
from nestvec.store.sqlite import SQLiteStore
from nestvec.transforms import Truncate

# What can change from stored vectors alone: how they are indexed, and how many dims are kept.
_REBUILDABLE = {f.name for f in table.in_part("index")} | {"dims"}


def changed_recipe(
    recipe: Recipe, changes: str | None = None, *, index: IndexSpec | None = None, **values: Any
) -> Recipe:
    """`recipe` with index fields and dims changed (`changes` in the recipe grammar, without a model)."""
    if changes:
        parsed, query = parse(changes, base=recipe)
        if query:
            raise InputError(f"{', '.join(query)} are search options; a rebuild changes the recipe only.")
        before = recipe.values()
        named = {k: v for k, v in parsed.values().items() if v != before[k]}
        values = {**named, **values}
    refused = sorted(set(values) - _REBUILDABLE)
    if refused:
        raise InputError(
            f"{', '.join(refused)} change how the vectors are made, which the stored vectors cannot show; "
            "build the collection again from its source file with `nestvec index build`. "
            f"A rebuild changes: {', '.join(sorted(_REBUILDABLE))}."
        )
    new = recipe.with_values(**values)
    if index is not None:
        new = dataclasses.replace(new, index=index)
    if new.dim > recipe.dim:
        raise InputError(
            f"dims={new.dim} exceeds the {recipe.dim} dimensions stored; to widen, build the collection "
            "again from its source file with `nestvec index build`."
        )
    return new


def derive_collection(source: Collection, target: Path, recipe: Recipe) -> Collection:
    """A new collection at `target` holding `source`'s documents under `recipe` (from `changed_recipe`)."""
    old = source.recipe
    target.mkdir()
    try:
        source._store.copy_to(target / STORE_FILE)
        if recipe.dim != old.dim:
            store = SQLiteStore(target / STORE_FILE)
            store.rewrite_vectors(Truncate(recipe.dim).apply, old.dim)
            store.close()
        steps = source.steps if recipe.dim == old.dim else source.steps.truncated(recipe.dim)
        if not recipe.vectors.fitted and recipe.vectors.dims == (old.identity.dim if old.identity else None):
            recipe = recipe.with_values(dims=None)  # the model's own width: nothing to truncate
        steps.save_in(target)
        write_json_atomic(target / "config.json", {**config_header("collection"), "recipe": recipe.to_dict()})
        derived = Collection.open(target, model=source.encoder)
        derived.checkpoint()
    except BaseException:
        shutil.rmtree(target, ignore_errors=True)
        raise
    return derived


def rebuild_collection(
    path: str | Path, changes: str | None = None, *, index: IndexSpec | None = None, **values: Any
) -> Path:
    """Give the collection at `path` new index settings and/or fewer `dims`, e.g. "index=hnsw:codes=int8"."""
    target = Path(path).expanduser().resolve()
    with Collection.open(target) as source:
        recipe = changed_recipe(source.recipe, changes, index=index, **values)
        tmp = target.with_name(f".{target.name}.rebuilding-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        derive_collection(source, tmp, recipe).close()
    old = target.with_name(f".{target.name}.replaced-{os.getpid()}")
    os.rename(target, old)
    os.rename(tmp, target)
    fsync_dir(target.parent)
    shutil.rmtree(old, ignore_errors=True)
    return target
