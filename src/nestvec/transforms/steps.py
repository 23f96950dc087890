"""A recipe's vector steps made real: whitening, principal axes or truncation, fitted once, saved,
applied alike.

Documents and queries both pass through `VectorSteps.apply`. Whitening and principal axes are fitted on the first
vectors a collection receives and saved in its folder (`transforms/`: config.json +
safetensors), written to a temporary folder and renamed, so a crash never leaves half of it and
two processes fitting at once agree on the first one saved.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from nestvec.errors import InputError
from nestvec.files import write_folder_whole
from nestvec.transforms.base import Transform, load, save
from nestvec.transforms.reduce import PrincipalAxes, Truncate, Whiten

if TYPE_CHECKING:
    from nestvec.recipe import VectorSpec

FOLDER = "transforms"


@dataclass(frozen=True)
class VectorSteps:
    step: Transform | None  # None: the model's vectors as they are

    @classmethod
    def for_spec(cls, spec: VectorSpec, *, model_dim: int) -> VectorSteps:
        dims = spec.dims
        if spec.fitted:  # the width it keeps, which bounds the sample it needs
            return cls((Whiten if spec.whiten else PrincipalAxes)(dims or model_dim))
        return cls(Truncate(dims) if dims is not None and dims < model_dim else None)

    @property
    def fitted(self) -> bool:
        return self.step is None or self.step.fitted

    def min_fit(self) -> int:
        """Vectors needed to fit: a covariance needs more samples than the dimensions it keeps."""
        dims = getattr(self.step, "dims", None) or 0
        return max(2 * dims, 64)

    def fit(self, vectors: np.ndarray) -> VectorSteps:
        if self.fitted:
            return self
        assert self.step is not None
        if len(vectors) < self.min_fit():
            raise InputError(
                f"{self.step.name} is fitted on the first vectors a collection receives and needs at least "
                f"{self.min_fit()}; got {len(vectors)}. Add at least {self.min_fit()} documents in the first call."
            )
        return VectorSteps(self.step.fit(vectors))

    def apply(self, vectors: np.ndarray) -> np.ndarray:
        if self.step is None or len(vectors) == 0:
            return vectors
        return self.step.apply(vectors)

    def truncated(self, dims: int) -> VectorSteps:
        """The same steps keeping only the first `dims` outputs (fitted axes are ordered by variance)."""
        if isinstance(self.step, Whiten) and self.step.fitted:
            return VectorSteps(self.step.truncated(dims))
        return self if self.step is None else VectorSteps(Truncate(dims))

    # -- persistence -------------------------------------------------------------------------
    def save_in(self, collection: Path) -> VectorSteps:
        """Save into `collection`; if another process saved first, theirs wins and is returned."""
        if not isinstance(self.step, Whiten) or not self.step.fitted:
            return self  # truncation is all in the recipe
        target = collection / FOLDER
        step = self.step
        try:
            write_folder_whole(target, lambda tmp: save(step, tmp))
        except OSError:
            if not (target / "config.json").is_file():
                raise
            return VectorSteps.load_from(collection, self)
        return self

    @classmethod
    def load_from(cls, collection: Path, blank: VectorSteps) -> VectorSteps:
        """The fitted steps saved in `collection`, or `blank` when nothing needed saving yet."""
        if blank.step is None or blank.step.fitted or not (collection / FOLDER / "config.json").is_file():
            return blank
        return cls(load(collection / FOLDER))
