"""The collections one server answers for: folders named on the command line plus a data folder."""

from __future__ import annotations

import logging
import os
import shutil
import threading
from pathlib import Path
from typing import Any

from nestvec.encoders import NAMED_MODELS
from nestvec.errors import InputError
from nestvec.recipe import Recipe, given_fields
from nestvec.registry import unknown_name_message
from nestvec.serve.encoders import ServedEncoders
from nestvec.store import Collection
from nestvec.store.collection import read_recipe

log = logging.getLogger("nestvec.serve")


class NotFoundError(InputError):
    """A collection or document the request names does not exist (answered with 404)."""


class ConflictError(InputError):
    """The request would overwrite something that exists (answered with 409)."""


class Catalog:
    """Open collections by name. Collections are opened once and shared by all requests."""

    def __init__(self, paths: list[Path], *, data_dir: Path | None, encoders: ServedEncoders) -> None:
        self.data_dir, self.encoders = data_dir, encoders
        self.model = encoders.config.model
        self._lock = threading.Lock()
        self._open: dict[str, Collection] = {}
        if data_dir:
            _make_data_dir(data_dir)
        found = (
            [p for p in sorted(data_dir.iterdir()) if not p.name.startswith(".") and (p / "config.json").is_file()]
            if data_dir
            else []
        )
        for path in [*found, *paths]:
            resolved = path.resolve()
            served = self._open.get(resolved.name)
            if served is None:
                self._open[resolved.name] = self._open_served(resolved)
            elif served.path != resolved:
                raise InputError(
                    f"Two collections would both be served as '{resolved.name}': {served.path} and {path}."
                )
            # else: named twice (on the command line and inside --data-dir): opened once

    def _open_served(self, path: Path) -> Collection:
        """Open with the server's encoder for its recipe, so its queries go through the batcher."""
        recipe = read_recipe(path)
        return Collection.open(path, model=self.encoders.for_recipe(recipe, str(path)))

    def names(self) -> list[str]:
        with self._lock:
            return sorted(self._open)

    def get(self, name: str) -> Collection:
        with self._lock:
            collection = self._open.get(name)
        if collection is None:
            raise NotFoundError(f"No collection named '{name}'. " + _choices(self.names()))
        return collection

    def create(self, name: str, *, model: str | None, recipe: str | None = None, **options: Any) -> Collection:
        if self.data_dir is None:
            raise InputError("This server was started without --data-dir, so it cannot create collections.")
        base = Recipe.parse(recipe) if recipe else Recipe()
        model = self._model_for(model, base, given_fields(recipe) if recipe else set())
        if model not in (self.model, *NAMED_MODELS):
            raise InputError(unknown_name_message("model", model, sorted({self.model, *NAMED_MODELS})))
        with self._lock:
            if name in self._open or (self.data_dir / name).exists():
                raise ConflictError(f"A collection named '{name}' already exists.")
            config = self.encoders.config
            made = base.with_values(model=model, backend=config.backend, compute=config.compute, **options)
            served = self.encoders.get(model, layers=made.encoder.layers, pooling=made.encoder.pooling)
            collection = Collection.create(self.data_dir / name, made, model=served)
            self._open[name] = collection
        return collection

    def _model_for(self, model: str | None, recipe: Recipe, given: set[str]) -> str:
        """The model a new collection is made with: the request's or its recipe's, else the server's;
        a recipe whose compute differs from the server's is refused, since the server embeds for it."""
        if "model" in given:
            if model is not None and model != recipe.model:
                raise InputError(f"model {model!r} and the recipe's {recipe.model!r} differ; name the model once.")
            model = recipe.model
        compute = self.encoders.config.compute
        if "compute" in given and recipe.encoder.compute != compute:
            raise InputError(
                f"The recipe asks compute={recipe.encoder.compute}, but this server computes {compute} (its "
                f"--compute) for every collection it serves. Drop compute from the recipe, or serve with "
                f"--compute {recipe.encoder.compute}."
            )
        return model or self.model

    def drop(self, name: str) -> None:
        """Delete a collection this server created (in --data-dir); others are only served."""
        collection = self.get(name)
        if self.data_dir is None or collection.path.parent != self.data_dir.resolve():
            raise InputError(
                f"'{name}' was named on the command line ({collection.path}); nestvec serve only deletes "
                "collections in its --data-dir. Stop the server and remove the folder yourself."
            )
        with self._lock:
            self._open.pop(name, None)
        collection.close()
        doomed = collection.path.with_name(f".{name}.deleting")
        os.rename(collection.path, doomed)  # gone at once, even if the removal below is cut short
        shutil.rmtree(doomed)

    def close(self) -> None:
        with self._lock:
            for collection in self._open.values():
                try:  # one failing close must not keep the others from checkpointing
                    collection.close()
                except Exception:
                    log.exception("closing %s failed", collection.path)
            self._open.clear()


def _make_data_dir(data_dir: Path) -> None:
    """New collections go there; none yet is fine, but it must be a folder the server can write to."""
    if data_dir.exists() and not data_dir.is_dir():
        raise InputError(f"--data-dir {data_dir} is a file; give a folder (it is made if absent).")
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"--data-dir {data_dir} cannot be made ({exc.strerror or exc}); choose a folder.") from exc


def _choices(names: list[str]) -> str:
    return f"Served collections: {', '.join(names)}." if names else "This server serves no collections yet."
