"""How texts become one collection's vectors: its model (with each side's prompt), then its fitted
vector steps. Documents and queries take the same path, so they are always comparable."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nestvec.encoders import Encoder, encoder_for
from nestvec.encoders.prompts import prompted
from nestvec.errors import CollectionError, InputError
from nestvec.locks import ReadWriteLock
from nestvec.recipe import Recipe
from nestvec.store.sqlite import SQLiteStore
from nestvec.transforms.steps import VectorSteps


class CollectionEmbedder:
    def __init__(
        self, path: Path, recipe: Recipe, store: SQLiteStore, lock: ReadWriteLock, encoder: Encoder | None
    ) -> None:
        self.path, self.recipe = path, recipe
        self._store, self._lock = store, lock
        self._encoder = encoder
        self._sides: dict[str, Encoder] = {}
        self._steps = VectorSteps.load_from(path, blank_steps(recipe))

    @property
    def encoder(self) -> Encoder:
        """The recipe's encoder, loaded on first use and checked against the recipe."""
        if self._encoder is None:
            encoder = encoder_for(self.recipe.encoder)
            self.recipe.check_encoder(encoder.identity, str(self.path))
            self._encoder = encoder
        return self._encoder

    def side_encoder(self, side: str) -> Encoder:
        """The encoder with the recipe's prompt for `side` (query or document) before each text."""
        if side not in self._sides:
            self._sides[side] = prompted(self.encoder, self.recipe.encoder.prompt(side))
        return self._sides[side]

    @property
    def steps(self) -> VectorSteps:
        return self._steps

    @property
    def model_dim(self) -> int:
        """The width of the model's vectors, before the recipe's vector steps."""
        return self.recipe.identity.dim if self.recipe.identity else self.encoder.dim

    def fitted_steps(self, sample: np.ndarray | None) -> VectorSteps | None:
        """The vector steps, fitted on `sample` (the first documents' vectors) if nothing fitted them
        yet; None when they are unfitted and there is no sample (nothing was ever added)."""
        if self._steps.fitted:
            return self._steps
        with self._lock.write():
            steps = VectorSteps.load_from(self.path, self._steps)  # another process may have fitted them
            stored = 0 if steps.fitted else self._store.chunk_count()
            if stored:
                raise CollectionError(missing_fit(self.path, stored))
            if not steps.fitted and sample is not None:
                steps = steps.fit(sample).save_in(self.path)
            self._steps = steps
        return steps if steps.fitted else None

    def embed(self, texts: list[str], *, batch_size: int, progress: bool | None, documents: bool) -> np.ndarray:
        encoder = self.side_encoder("document" if documents else "query")
        vectors = encoder.encode(texts, batch_size=batch_size, progress=progress)
        steps = self.fitted_steps(vectors if documents else None)
        if steps is None:
            raise InputError(
                "This collection transforms its vectors by a fit on its first documents (whiten or pca); "
                "add documents first."
            )
        return steps.apply(vectors)


def missing_fit(path: Path, vectors: int) -> str:
    # Fitting saves transforms/ before the first vectors are stored, so stored vectors without it
    # mean it was deleted or lost: refitting would whiten new texts differently from the old.
    return (
        f"{path} holds {vectors} transformed vectors but its fitted transform (transforms/: whiten or pca) is missing. "
        "Restore the collection's transforms/ folder from a backup; nothing else can reproduce it."
    )


def blank_steps(recipe: Recipe) -> VectorSteps:
    width = recipe.identity.dim if recipe.identity else recipe.dim
    return VectorSteps.for_spec(recipe.vectors, model_dim=width)
