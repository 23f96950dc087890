"""Rebuild a collection with another index setting or fewer dimensions, without re-embedding.

Stored vectors are the model's output truncated to the recipe's dims; truncating them again and
renormalizing gives exactly what embedding at the smaller width would. The new collection is
built beside the old one and swapped in by rename, so a crash leaves the old one intact.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path

from nestvec.errors import InputError
from nestvec.files import config_header, fsync_dir, write_json_atomic
from nestvec.index.spec import IndexSpec
from nestvec.store.collection import STORE_FILE, Collection
from nestvec.store.sqlite import SQLiteStore
from nestvec.transforms import Truncate


def rebuild_collection(path: str | Path, *, index: IndexSpec, dims: int | None = None) -> Path:
    """Give the collection at `path` a new index spec and (optionally smaller) `dims`."""
    target = Path(path).expanduser().resolve()
    with Collection.open(target) as source:
        recipe = source.recipe
        width = dims or recipe.dim
        if width > recipe.dim:
            raise InputError(
                f"dims={width} exceeds the {recipe.dim} dimensions stored in {target}; "
                "to widen, build the collection again from its source file with `nestvec index build`."
            )
        new_dims = None if width == recipe.identity.dim else width
        tmp = target.with_name(f".{target.name}.rebuilding-{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        try:
            source._store.copy_to(tmp / STORE_FILE)
            if width != recipe.dim:
                store = SQLiteStore(tmp / STORE_FILE)
                store.rewrite_vectors(Truncate(width).apply, recipe.dim)
                store.close()
            new = dataclasses.replace(recipe, index=index, dims=new_dims)
            write_json_atomic(tmp / "config.json", {**config_header("collection"), "recipe": new.to_dict()})
            with Collection.open(tmp, model=source.encoder) as rebuilt:
                rebuilt.checkpoint()
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    old = target.with_name(f".{target.name}.replaced-{os.getpid()}")
    os.rename(target, old)
    os.rename(tmp, target)
    fsync_dir(target.parent)
    shutil.rmtree(old, ignore_errors=True)
    return target
