"""A collection's folder: config.json with its recipe, and the store, created whole or not at all."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from nestvec.errors import CollectionError, InputError
from nestvec.files import check_creatable, config_header, fsync_dir, read_config, write_json_atomic
from nestvec.recipe import Recipe
from nestvec.store.sqlite import SQLiteStore

STORE_FILE = "store.sqlite3"


def read_recipe(path: str | Path) -> Recipe:
    """The recipe saved in a collection's config.json (nothing else is opened)."""
    target = Path(path).expanduser().resolve()
    config = read_config(target, "collection")
    try:
        return Recipe.from_dict(config["recipe"])
    except (KeyError, TypeError, ValueError, InputError) as exc:
        raise CollectionError(f"{target}/config.json has a malformed recipe ({exc}).") from exc


def write_folder(target: Path, recipe: Recipe) -> None:
    check_creatable(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.creating-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir()
        SQLiteStore(tmp / STORE_FILE, create=True, sparse=recipe.sparse).close()
        write_json_atomic(tmp / "config.json", {**config_header("collection"), "recipe": recipe.to_dict()})
        os.rename(tmp, target)
        fsync_dir(target.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
